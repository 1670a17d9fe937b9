/*
 * test_groups.c - the group coordinator's wire side and its journal, with
 * the broker in one process (tbroker.h): a member joins, syncs, heartbeats
 * and leaves over real requests; committed offsets, their deletions, group
 * deletions and expiries survive a stop and a start on the same WAL, and
 * bad commits get Kafka's error codes.
 */
#include "tbroker.h"
#include "../../kafka/kreq.h"

static const char *const SETS[] = {
	"group.initial.rebalance.delay.ms=0",
	"offset.metadata.max.bytes=16",
	"num.partitions=2",
	NULL,
};
#define WAL "build/test-groups-wal"

/* OffsetCommit v8 of one offset; the partition's error code. */
static int16_t commit(int fd, const char *group, const char *topic, int32_t part, int64_t off,
		      const char *meta)
{
	struct arena a;
	struct offset_commit_req_offset_commit_request_partition p;
	struct offset_commit_req_offset_commit_request_topic t = { 0 };
	struct offset_commit_req rq;
	struct offset_commit_resp rs;
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_offset_commit_req, &rq);
	kc_defaults(&kc_offset_commit_req_offset_commit_request_partition, &p);
	rq.group_id = kstr(group);
	rq.member_id = kstr("");
	rq.group_instance_id = KC_NULL_STR;
	p.partition_index = part;
	p.committed_offset = off;
	p.committed_metadata = kstr(meta);
	t.name = kstr(topic);
	t.partitions = &p;
	t.partitions_n = 1;
	rq.topics = &t;
	rq.topics_n = 1;
	if (roundtrip(fd, 8, 8, &rq, &rs, &a) == 0 && rs.topics_n == 1 && rs.topics[0].partitions_n == 1)
		err = rs.topics[0].partitions[0].error_code;
	arena_free(&a);
	return err;
}

/* OffsetFetch v1 of one partition: the committed offset (-1 none, -100 failure) and metadata. */
static int64_t fetch(int fd, const char *group, const char *topic, int32_t part, char *meta, size_t mlen)
{
	struct arena a;
	struct offset_fetch_req_offset_fetch_request_topic t = { 0 };
	struct offset_fetch_req rq;
	struct offset_fetch_resp rs;
	int64_t off = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_offset_fetch_req, &rq);
	rq.group_id = kstr(group);
	t.name = kstr(topic);
	t.partition_indexes = &part;
	t.partition_indexes_n = 1;
	rq.topics = &t;
	rq.topics_n = 1;
	if (roundtrip(fd, 9, 1, &rq, &rs, &a) == 0 && rs.topics_n == 1 &&
	    rs.topics[0].partitions_n == 1 && rs.topics[0].partitions[0].error_code == 0) {
		off = rs.topics[0].partitions[0].committed_offset;
		if (meta)
			snprintf(meta, mlen, "%.*s", (int)rs.topics[0].partitions[0].metadata.len,
				 rs.topics[0].partitions[0].metadata.p);
	}
	arena_free(&a);
	return off;
}

/* OffsetFetch v8 for group g with topics null: the number of offsets answered, -100 on failure. */
static int fetch_all(int fd, const char *group)
{
	struct arena a;
	struct offset_fetch_req_offset_fetch_request_group g;
	struct offset_fetch_req rq;
	struct offset_fetch_resp rs;
	int n = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_offset_fetch_req, &rq);
	kc_defaults(&kc_offset_fetch_req_offset_fetch_request_group, &g);
	g.group_id = kstr(group);
	g.topics = NULL;
	g.topics_n = -1;
	rq.groups = &g;
	rq.groups_n = 1;
	if (roundtrip(fd, 9, 8, &rq, &rs, &a) == 0 && rs.groups_n == 1 && rs.groups[0].error_code == 0) {
		n = 0;
		for (int32_t i = 0; i < rs.groups[0].topics_n; i++)
			n += rs.groups[0].topics[i].partitions_n;
	}
	arena_free(&a);
	return n;
}

/* ListGroups v4: the number of groups, -100 on failure. */
static int list_groups(int fd)
{
	struct arena a;
	struct list_groups_req rq;
	struct list_groups_resp rs;
	int n = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_list_groups_req, &rq);
	if (roundtrip(fd, 16, 4, &rq, &rs, &a) == 0 && rs.error_code == 0)
		n = rs.groups_n;
	arena_free(&a);
	return n;
}

static int16_t delete_group(int fd, const char *group)
{
	struct arena a;
	struct kc_str name = kstr(group);
	struct delete_groups_req rq;
	struct delete_groups_resp rs;
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_delete_groups_req, &rq);
	rq.groups_names = &name;
	rq.groups_names_n = 1;
	if (roundtrip(fd, 42, 2, &rq, &rs, &a) == 0 && rs.results_n == 1)
		err = rs.results[0].error_code;
	arena_free(&a);
	return err;
}

static int16_t offset_delete(int fd, const char *group, const char *topic, int32_t part)
{
	struct arena a;
	struct offset_delete_req_offset_delete_request_partition p = { part };
	struct offset_delete_req_offset_delete_request_topic t = { 0 };
	struct offset_delete_req rq;
	struct offset_delete_resp rs;
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_offset_delete_req, &rq);
	rq.group_id = kstr(group);
	t.name = kstr(topic);
	t.partitions = &p;
	t.partitions_n = 1;
	rq.topics = &t;
	rq.topics_n = 1;
	if (roundtrip(fd, 47, 0, &rq, &rs, &a) == 0 && rs.error_code == 0 && rs.topics_n == 1)
		err = rs.topics[0].partitions[0].error_code;
	else if (rs.error_code != 0)
		err = rs.error_code;
	arena_free(&a);
	return err;
}

static void restart(struct tbroker *b)
{
	tb_stop(b);
	T_EQ(tb_start(b, WAL, 0, SETS), 0);
}

static void test_commits_survive_restarts(void)
{
	struct tbroker b;
	char meta[64];

	T_EQ(tb_start(&b, WAL, 1, SETS), 0);
	T_EQ(create_topic(b.fd, "t"), KERR_NONE);
	T_EQ(commit(b.fd, "g", "t", 0, 42, "m-42"), KERR_NONE);
	T_EQ(commit(b.fd, "g", "t", 0, 43, "m-43"), KERR_NONE);
	T_EQ(commit(b.fd, "g2", "t", 0, 7, ""), KERR_NONE);
	/* Bad commits: each partition gets its own error, nothing is stored. */
	T_EQ(commit(b.fd, "g", "t", 5, 1, ""), KERR_UNKNOWN_TOPIC_OR_PARTITION);
	T_EQ(commit(b.fd, "g", "nope", 0, 1, ""), KERR_UNKNOWN_TOPIC_OR_PARTITION);
	T_EQ(commit(b.fd, "g", "t", 0, 1, "far longer than sixteen bytes"), KERR_OFFSET_METADATA_TOO_LARGE);
	/* An id too long for the journal's 16-bit length is refused, not truncated. */
	char *huge = malloc(40001);
	memset(huge, 'x', 40000);
	huge[40000] = 0;
	T_EQ(commit(b.fd, huge, "t", 0, 1, ""), KERR_INVALID_GROUP_ID);
	free(huge);
	T_EQ(fetch(b.fd, "g", "t", 0, meta, sizeof(meta)), 43);
	T_STR_EQ(meta, "m-43");
	T_EQ(fetch(b.fd, "nobody", "t", 0, NULL, 0), -1);
	T_EQ(fetch_all(b.fd, "g"), 1);

	restart(&b);
	T_EQ(fetch(b.fd, "g", "t", 0, meta, sizeof(meta)), 43);
	T_STR_EQ(meta, "m-43");
	T_EQ(fetch(b.fd, "g2", "t", 0, NULL, 0), 7);
	T_EQ(list_groups(b.fd), 2);

	/* Deletions are journaled too. */
	T_EQ(offset_delete(b.fd, "g", "t", 0), KERR_NONE);
	T_EQ(delete_group(b.fd, "g2"), KERR_NONE);
	T_EQ(delete_group(b.fd, "g2"), KERR_GROUP_ID_NOT_FOUND);
	T_EQ(offset_delete(b.fd, "g2", "t", 0), KERR_GROUP_ID_NOT_FOUND);
	restart(&b);
	T_EQ(fetch(b.fd, "g", "t", 0, NULL, 0), -1);
	T_EQ(fetch(b.fd, "g2", "t", 0, NULL, 0), -1);
	T_EQ(list_groups(b.fd), 0);

	/* Expiry writes tombstones: expired offsets stay gone after a restart. */
	T_EQ(commit(b.fd, "old", "t", 0, 5, ""), KERR_NONE);
	kgroups_expire(b.k, loop_wall_ms() + (int64_t)b.cfg.offsets_retention_minutes * 60000 + 1000);
	pump(-1, 20);
	T_EQ(fetch(b.fd, "old", "t", 0, NULL, 0), -1);
	restart(&b);
	T_EQ(fetch(b.fd, "old", "t", 0, NULL, 0), -1);
	T_EQ(list_groups(b.fd), 0);
	tb_stop(&b);
	unlink(WAL);
}

/* JoinGroup v5: error code, and the member id and generation it hands out. */
static int16_t join(int fd, const char *group, const char *member, char *id_out, int32_t *gen,
		    int *nmembers)
{
	struct arena a;
	struct join_group_req_join_group_request_protocol p = { 0 };
	struct join_group_req rq;
	struct join_group_resp rs;
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_join_group_req, &rq);
	rq.group_id = kstr(group);
	rq.session_timeout_ms = 10000;
	rq.rebalance_timeout_ms = 10000;
	rq.member_id = kstr(member);
	rq.group_instance_id = KC_NULL_STR;
	rq.protocol_type = kstr("consumer");
	p.name = kstr("range");
	p.metadata.p = (const uint8_t *)"\0\0\0\0\0\1\0\1t\0\0\0\0";
	p.metadata.len = 13;
	rq.protocols = &p;
	rq.protocols_n = 1;
	if (roundtrip(fd, 11, 5, &rq, &rs, &a) == 0) {
		err = rs.error_code;
		snprintf(id_out, 128, "%.*s", (int)rs.member_id.len, rs.member_id.p);
		*gen = rs.generation_id;
		*nmembers = rs.members_n;
	}
	arena_free(&a);
	return err;
}

static int16_t sync_group(int fd, const char *group, const char *member, int32_t gen, char *got,
			  size_t glen)
{
	struct arena a;
	struct sync_group_req_sync_group_request_assignment as = { 0 };
	struct sync_group_req rq;
	struct sync_group_resp rs;
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_sync_group_req, &rq);
	rq.group_id = kstr(group);
	rq.generation_id = gen;
	rq.member_id = kstr(member);
	rq.group_instance_id = KC_NULL_STR;
	as.member_id = kstr(member);
	as.assignment.p = (const uint8_t *)"mine";
	as.assignment.len = 4;
	rq.assignments = &as;
	rq.assignments_n = 1;
	if (roundtrip(fd, 14, 3, &rq, &rs, &a) == 0) {
		err = rs.error_code;
		snprintf(got, glen, "%.*s", (int)rs.assignment.len, (const char *)rs.assignment.p);
	}
	arena_free(&a);
	return err;
}

static int16_t heartbeat(int fd, const char *group, const char *member, int32_t gen)
{
	struct arena a;
	struct heartbeat_req rq;
	struct heartbeat_resp rs;
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_heartbeat_req, &rq);
	rq.group_id = kstr(group);
	rq.generation_id = gen;
	rq.member_id = kstr(member);
	rq.group_instance_id = KC_NULL_STR;
	if (roundtrip(fd, 12, 3, &rq, &rs, &a) == 0)
		err = rs.error_code;
	arena_free(&a);
	return err;
}

/* DescribeGroups v5 of one group: its state and first member's client host. */
static void describe(int fd, const char *group, char *state, char *host)
{
	struct arena a;
	struct kc_str name = kstr(group);
	struct describe_groups_req rq;
	struct describe_groups_resp rs;

	state[0] = host[0] = 0;
	arena_init(&a, 0);
	kc_defaults(&kc_describe_groups_req, &rq);
	rq.groups = &name;
	rq.groups_n = 1;
	if (roundtrip(fd, 15, 5, &rq, &rs, &a) == 0 && rs.groups_n == 1) {
		snprintf(state, 32, "%.*s", (int)rs.groups[0].group_state.len, rs.groups[0].group_state.p);
		if (rs.groups[0].members_n > 0)
			snprintf(host, 64, "%.*s", (int)rs.groups[0].members[0].client_host.len,
				 rs.groups[0].members[0].client_host.p);
	}
	arena_free(&a);
}

static int16_t leave(int fd, const char *group, const char *member)
{
	struct arena a;
	struct leave_group_req_member_identity mi;
	struct leave_group_req rq;
	struct leave_group_resp rs;
	int16_t err = -100;

	arena_init(&a, 0);
	kc_defaults(&kc_leave_group_req, &rq);
	kc_defaults(&kc_leave_group_req_member_identity, &mi);
	mi.member_id = kstr(member);
	mi.group_instance_id = KC_NULL_STR;
	rq.group_id = kstr(group);
	rq.members = &mi;
	rq.members_n = 1;
	if (roundtrip(fd, 13, 3, &rq, &rs, &a) == 0 && rs.error_code == 0 && rs.members_n == 1)
		err = rs.members[0].error_code;
	arena_free(&a);
	return err;
}

static void test_one_member_lifecycle(void)
{
	struct tbroker b;
	char id[128], id2[128], got[32], state[32], host[64];
	int32_t gen = -5;
	int n = -1;

	T_EQ(tb_start(&b, WAL, 1, SETS), 0);
	T_EQ(join(b.fd, "", "", id, &gen, &n), KERR_INVALID_GROUP_ID);
	T_EQ(join(b.fd, "grp", "", id, &gen, &n), KERR_MEMBER_ID_REQUIRED);
	T_CHECK(strlen(id) > 5);
	T_EQ(join(b.fd, "grp", id, id2, &gen, &n), KERR_NONE);
	T_STR_EQ(id2, id);
	T_EQ(gen, 1);
	T_EQ(n, 1);		/* the leader sees every member */
	T_EQ(sync_group(b.fd, "grp", id, gen + 1, got, sizeof(got)), KERR_ILLEGAL_GENERATION);
	T_EQ(sync_group(b.fd, "grp", id, gen, got, sizeof(got)), KERR_NONE);
	T_STR_EQ(got, "mine");
	T_EQ(heartbeat(b.fd, "grp", id, gen), KERR_NONE);
	T_EQ(heartbeat(b.fd, "grp", id, gen - 1), KERR_ILLEGAL_GENERATION);
	T_EQ(heartbeat(b.fd, "grp", "stranger", gen), KERR_UNKNOWN_MEMBER_ID);
	describe(b.fd, "grp", state, host);
	T_STR_EQ(state, "Stable");
	T_STR_EQ(host, "/127.0.0.1");
	T_EQ(leave(b.fd, "grp", id), KERR_NONE);
	T_EQ(leave(b.fd, "grp", id), KERR_UNKNOWN_MEMBER_ID);
	pump(-1, 5);
	describe(b.fd, "grp", state, host);
	T_STR_EQ(state, "Empty");
	describe(b.fd, "never-seen", state, host);
	T_STR_EQ(state, "Dead");
	tb_stop(&b);
	unlink(WAL);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	L = loop_new();
	T_RUN(test_commits_survive_restarts);
	T_RUN(test_one_member_lifecycle);
	loop_destroy(L);
	return t_done();
}
