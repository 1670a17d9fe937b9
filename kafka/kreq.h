/*
 * kreq.h - one Kafka request in flight, and what handlers share.
 *
 * A struct kreq lives from the moment a frame is decoded until its reply is
 * encoded (or dropped): it holds the decoded header and body, the response
 * struct the handler fills, and the arena both live in.  Handlers that finish
 * at once call kreq_reply(); handlers that wait (a produce for durability, a
 * fetch for data) keep the kreq and reply later.
 *
 * If the connection closes first, kr->req becomes NULL (see kreq_cancel in
 * server.c) and kr->cancel, if set, runs so the handler can detach timers and
 * waiters; work already handed to storage completes and kreq_reply() then
 * just frees.  Nothing reaches a closed connection.
 */
#ifndef SL_KAFKA_KREQ_H
#define SL_KAFKA_KREQ_H

#include <string.h>
#include "codec.h"
#include "msgs.h"
#include "kerr.h"
#include "topic.h"
#include "group.h"
#include "pstate.h"
#include "../storage/tier.h"
#include "../kernel/arena.h"
#include "../kernel/config.h"
#include "../kernel/loop.h"
#include "../net/conn.h"

struct kafka {
	struct loop *l;
	const struct config *cfg;
	struct store *st;
	struct registry *reg;
	char adv_host[256];		/* advertised host for Metadata */
	int32_t adv_port;
	int32_t listen_port;		/* what the listener bound */
	int adv_port_explicit;
	struct grp_coord *gc;		/* consumer groups (kafka/groups.c) */
	struct tier *tier;		/* shared storage (storage/tier.h); NULL without an object store */
	struct loop_timer gtimer;	/* the coordinator's next deadline */
	struct loop_timer etimer;	/* offset expiry */
	struct kretention *ret;		/* log retention checks (kafka/retention.c) */
	struct pst_alloc palloc;	/* producer ids (kafka/producers.c) */
	int64_t pid_mark;		/* the newest durable producer-id mark */
	struct loop_timer ptimer;	/* producer-state expiry */
};

struct kreq;
typedef void (*kreq_fn)(struct kreq *kr);

struct kreq {
	struct kafka *k;
	struct conn_req *req;		/* NULL once the connection closed */
	struct kc_req_hdr hdr;
	const struct kc_api *api;
	int16_t ver;
	int flexible;
	struct arena a;
	void *body;			/* decoded request, in the arena */
	void *resp;			/* response struct, defaults set, in the arena */
	kreq_fn cancel;			/* handler's detach, when waiting */
	void *state;			/* handler's own, in the arena */
	size_t reply_bytes;		/* 0, or about what the reply will take: allocated at once */
};

/* One row per API: what ApiVersions advertises and how requests are served. */
struct kapi {
	int16_t key;
	int16_t adv_min, adv_max;	/* advertised in ApiVersions */
	int16_t min, max;		/* served; versions outside get UNSUPPORTED_VERSION */
	kreq_fn handle;
};
extern const struct kapi kapis[];
extern const size_t nkapis;
const struct kapi *kapi_find(int16_t key);

/* Encode kr->resp with the response header, send, and free kr. */
void kreq_reply(struct kreq *kr);
/* No reply (acks=0): release the request slot and free kr. */
void kreq_noreply(struct kreq *kr);
/* Close the connection with a reason (malformed request) and free kr. */
void kreq_fail(struct kreq *kr, const char *why);

/* NUL-terminated copy of a wire string into the request's arena ("" if null). */
char *kreq_str(struct kreq *kr, struct kc_str s);
/* A kc_str borrowing a NUL-terminated string. */
static inline struct kc_str kstr(const char *s)
{
	return kc_str_of(s, (int32_t)strlen(s));
}

/*
 * n response elements of struct s, each set to its defaults, from the
 * request's arena; NULL when the arena's cap is reached (the handler then
 * fails the request).  KR_NEW names the struct once: KR_NEW(kr, fetch_resp_partition_data, n).
 */
void *kreq_array(struct kreq *kr, const struct kc_struct *s, int32_t n);
#define KR_NEW(kr, type, n) ((struct type *)kreq_array((kr), &kc_##type, (n)))

/* Fill an ApiVersions response from the API table (no reply). */
void api_versions_fill(struct kreq *kr);

/* Handlers, one per API (kafka/h_*.c). */
void h_api_versions(struct kreq *kr);
void h_metadata(struct kreq *kr);
void h_create_topics(struct kreq *kr);
void h_delete_topics(struct kreq *kr);
void h_delete_records(struct kreq *kr);
void h_produce(struct kreq *kr);
void h_fetch(struct kreq *kr);
void h_list_offsets(struct kreq *kr);
void h_find_coordinator(struct kreq *kr);
void h_join_group(struct kreq *kr);
void h_sync_group(struct kreq *kr);
void h_heartbeat(struct kreq *kr);
void h_leave_group(struct kreq *kr);
void h_list_groups(struct kreq *kr);
void h_describe_groups(struct kreq *kr);
void h_delete_groups(struct kreq *kr);
void h_offset_commit(struct kreq *kr);
void h_offset_fetch(struct kreq *kr);
void h_offset_delete(struct kreq *kr);
void h_init_producer_id(struct kreq *kr);
void h_describe_producers(struct kreq *kr);

/*
 * Idempotent producers (kafka/producers.c): the producer-id allocator and
 * its journal records (kind 4), expiry of idle producer state, and the
 * broker-wide producer blob in the manifest.
 */
int kprod_init(struct kafka *k);
void kprod_destroy(struct kafka *k);
void kprod_replay(struct kafka *k, const uint8_t *p, size_t n);
int kprod_restore(struct kafka *k, const struct manifest *m);
/* Hand the tier the hooks that put producer state in the manifest (k->tier set). */
void kprod_set_tier(struct kafka *k);
int kprod_global_encode(struct kafka *k, struct sl_wr *w, uint16_t *version);

/*
 * Topic changes go to the store's metadata journal (durable in log order
 * with the data).  j is the caller's and must stay valid until j->done runs.
 */
struct kjournal {
	struct stream_op op;
	void (*done)(struct kjournal *j, int err);
	void *arg;
	/* set by kafka_journal: the record, kept for the tier until durable */
	struct kafka *k;
	uint8_t *rec;
	size_t reclen;
};
/* Journal the bytes of w; 0 (j->done will run) or an sl_err (it will not). */
int kafka_journal(struct kafka *k, const struct sl_wr *w, struct kjournal *j);

/*
 * The group coordinator's glue (kafka/groups.c).  kgroups_kick() re-arms the
 * coordinator's timer and must follow every call into the engine that can
 * change a deadline; kgroups_now() is the engine's monotonic clock.
 */
int kgroups_init(struct kafka *k);
void kgroups_destroy(struct kafka *k);
int64_t kgroups_now(struct kafka *k);
void kgroups_kick(struct kafka *k);
/* Apply one group record from the journal (recovery). */
void kgroups_replay(struct kafka *k, const uint8_t *p, size_t n);
/* Expire committed offsets now (also run by a timer), journaling tombstones. */
void kgroups_expire(struct kafka *k, int64_t wall_now);

/*
 * A group record under construction: gj_begin, then gj_commit or gj_delete
 * per entry, then gj_submit (journal it; kj->done runs later unless it
 * returns an error) or gj_abandon.  ops: 1 commit, 2 delete offsets,
 * 3 delete the group.
 */
struct gjournal {
	struct sl_wr w;
	size_t count_at;
	int32_t n;
};
/*
 * Group ids longer than this are refused (INVALID_GROUP_ID) by JoinGroup and
 * OffsetCommit, the calls that create groups: a journal record stores the id
 * with a 16-bit length, and replay reads at most this many bytes.  Compact
 * (flexible) strings could otherwise carry longer ones.
 */
#define GJ_GROUP_ID_MAX 32767
void gj_begin(struct gjournal *j, uint8_t op, const char *group);
void gj_commit(struct gjournal *j, const struct grp_offset *o);
void gj_delete(struct gjournal *j, const char *topic, int32_t partition);
int gj_submit(struct kafka *k, struct gjournal *j, struct kjournal *kj);
void gj_abandon(struct gjournal *j);

/* "/host" for DescribeGroups' client_host, from a connection's "host:port". */
const char *kreq_client_host(struct kreq *kr);

/*
 * Tell the tier (k->tier) of one durable journal record: topic and group
 * records become manifest edits.  Called as each record becomes durable and
 * again for each record replayed from the WAL.
 */
void kafka_meta_to_tier(struct kafka *k, const uint8_t *p, size_t n);
/* The group record's edits (kafka/groups.c). */
void kgroups_to_tier(struct kafka *k, const uint8_t *p, size_t n);
/*
 * Rebuild topics, partition offsets and committed group offsets from a
 * manifest, before the WAL is replayed over it.  0, or an error (logged).
 */
int kafka_restore(struct kafka *k, const struct manifest *m);

/* Auto-create for Metadata; NULL when not allowed or invalid. */
struct topic *kafka_auto_create(struct kafka *k, const char *name, size_t len, int16_t *err);

#endif
