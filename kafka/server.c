/*
 * server.c - from a frame to a handler and back: header decoding, the API
 * table, per-request state, reply encoding.
 *
 * A request is handled in four steps:
 *   1. the header is decoded; an unknown key or version closes the connection,
 *      except ApiVersions, which is answered in its v0 form with
 *      UNSUPPORTED_VERSION so clients can retry lower (KIP-511);
 *   2. the body is decoded into the request's arena; a malformed body closes
 *      only this connection, with a log line naming the API and the cause;
 *   3. the handler fills the response struct (defaults already set) and
 *      replies now or later;
 *   4. kreq_reply() encodes header and body into the reply and hands it to
 *      net, which sends replies in request order.
 *
 * The arena of a request is capped at 8 times its frame plus 64 MiB: decoded
 * structs are larger than their wire form but never by more than 8 times for
 * honest requests, the 64 MiB leave room for the response (Metadata for
 * every topic is a small request with a large answer), and a hostile count
 * cannot allocate past the cap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kafka.h"
#include "kreq.h"
#include "retention.h"
#include "../kernel/log.h"

/*
 * The one API table: ApiVersions advertises exactly these rows and requests
 * are dispatched through them.  Produce, Fetch advertise from 0 although
 * they serve from 3 and 4: librdkafka 2.0.2 enables compression and other
 * features only if the advertised ranges overlap old versions (gzip, snappy
 * and lz4 need Produce 0, lz4 also FindCoordinator 0).
 */
const struct kapi kapis[] = {
	{ 0, 0, 9, 3, 9, h_produce },		/* Produce */
	{ 1, 0, 12, 4, 12, h_fetch },		/* Fetch */
	{ 2, 0, 7, 0, 7, h_list_offsets },	/* ListOffsets */
	{ 3, 0, 12, 0, 12, h_metadata },	/* Metadata */
	{ 8, 0, 8, 0, 8, h_offset_commit },	/* OffsetCommit */
	{ 9, 0, 8, 0, 8, h_offset_fetch },	/* OffsetFetch */
	{ 10, 0, 4, 0, 4, h_find_coordinator },	/* FindCoordinator */
	{ 11, 0, 9, 0, 9, h_join_group },	/* JoinGroup */
	{ 12, 0, 4, 0, 4, h_heartbeat },	/* Heartbeat */
	{ 13, 0, 5, 0, 5, h_leave_group },	/* LeaveGroup */
	{ 14, 0, 5, 0, 5, h_sync_group },	/* SyncGroup */
	{ 15, 0, 5, 0, 5, h_describe_groups },	/* DescribeGroups */
	{ 16, 0, 4, 0, 4, h_list_groups },	/* ListGroups */
	{ 18, 0, 3, 0, 3, h_api_versions },	/* ApiVersions */
	{ 19, 0, 7, 0, 7, h_create_topics },	/* CreateTopics */
	{ 20, 0, 6, 0, 6, h_delete_topics },	/* DeleteTopics */
	{ 21, 0, 2, 0, 2, h_delete_records },	/* DeleteRecords */
	{ 22, 0, 4, 0, 4, h_init_producer_id },	/* InitProducerId */
	{ 42, 0, 2, 0, 2, h_delete_groups },	/* DeleteGroups */
	{ 47, 0, 0, 0, 0, h_offset_delete },	/* OffsetDelete */
	{ 61, 0, 0, 0, 0, h_describe_producers },	/* DescribeProducers */
};
const size_t nkapis = sizeof(kapis) / sizeof(kapis[0]);

const struct kapi *kapi_find(int16_t key)
{
	for (size_t i = 0; i < nkapis; i++)
		if (kapis[i].key == key)
			return &kapis[i];
	return NULL;
}

static void replay_meta(void *arg, const uint8_t *p, size_t n);

struct kafka *kafka_new(struct loop *l, const struct config *cfg, struct store *st)
{
	struct kafka *k = calloc(1, sizeof(*k));
	struct listener_addr la;

	if (!k)
		return NULL;
	k->l = l;
	k->cfg = cfg;
	k->st = st;
	k->reg = registry_new(st);
	if (!k->reg) {
		free(k);
		return NULL;
	}
	if (kgroups_init(k) != 0 || kretention_init(k) != 0 || kprod_init(k) != 0) {
		kgroups_destroy(k);
		registry_destroy(k->reg);
		free(k);
		return NULL;
	}
	store_set_meta_handler(st, replay_meta, k);
	const char *adv = cfg->advertised_listeners && *cfg->advertised_listeners
				  ? cfg->advertised_listeners : cfg->listeners;
	if (config_parse_listener(adv, &la) == 0) {
		snprintf(k->adv_host, sizeof(k->adv_host), "%s", la.host);
		k->adv_port = la.port;
		k->adv_port_explicit = adv == cfg->advertised_listeners;
	}
	/* Clients must connect back to something: a wildcard listener advertises loopback. */
	if (!k->adv_host[0] || strcmp(k->adv_host, "0.0.0.0") == 0 || strcmp(k->adv_host, "::") == 0)
		snprintf(k->adv_host, sizeof(k->adv_host), "127.0.0.1");
	return k;
}

void kafka_set_port(struct kafka *k, uint16_t port)
{
	k->listen_port = port;
	if (!k->adv_port_explicit)
		k->adv_port = port;
}

void kafka_set_tier(struct kafka *k, struct tier *t)
{
	k->tier = t;
	kprod_set_tier(k);
}

int kafka_restore_tier(struct kafka *k)
{
	const struct manifest *m = tier_manifest(k->tier);

	if (!m)
		return 0;
	int rc = kafka_restore(k, m);
	return rc ? rc : kprod_restore(k, m);
}

void kafka_destroy(struct kafka *k)
{
	if (!k)
		return;
	kprod_destroy(k);
	kretention_destroy(k);
	kgroups_destroy(k);
	registry_destroy(k->reg);
	free(k);
}

static void kreq_free(struct kreq *kr)
{
	arena_free(&kr->a);
	free(kr);
}

/* net's cancel: the connection closed while kr waited. */
static void kreq_cancel(struct conn_req *req)
{
	struct kreq *kr = req->ctx;

	kr->req = NULL;
	if (kr->cancel)
		kr->cancel(kr);
}

void kreq_reply(struct kreq *kr)
{
	struct conn_req *req = kr->req;

	if (req) {
		req->cancel = NULL;
		/* A large reply (a Fetch) gets its buffer whole, not by doublings. */
		if ((kr->reply_bytes && wr_prepare(&req->out, kr->reply_bytes) != 0) ||
		    kc_encode_response_header(&req->out, kr->api, kr->ver, kr->hdr.correlation_id) != 0 ||
		    kc_encode(kr->api->resp, kr->ver, kr->flexible, kr->resp, &req->out) != 0) {
			log_error("kafka", "cannot encode %s v%d response for %s: %s", kr->api->name,
				  kr->ver, conn_peer(req->c), sl_strerror(req->out.err));
			conn_close(req->c, "response encoding failed");
		} else {
			conn_req_done(req);
		}
	}
	kreq_free(kr);
}

void kreq_noreply(struct kreq *kr)
{
	if (kr->req) {
		kr->req->cancel = NULL;
		conn_req_drop(kr->req);
	}
	kreq_free(kr);
}

void kreq_fail(struct kreq *kr, const char *why)
{
	if (kr->req) {
		kr->req->cancel = NULL;
		conn_close(kr->req->c, why);
	}
	kreq_free(kr);
}

void *kreq_array(struct kreq *kr, const struct kc_struct *s, int32_t n)
{
	if (n <= 0)
		return NULL;
	uint8_t *p = arena_calloc(&kr->a, (size_t)n, s->size);
	if (p)
		for (int32_t i = 0; i < n; i++)
			kc_defaults(s, p + (size_t)i * s->size);
	return p;
}

char *kreq_str(struct kreq *kr, struct kc_str s)
{
	char *p = arena_strndup(&kr->a, s.len > 0 ? s.p : "", s.len > 0 ? (size_t)s.len : 0);
	return p ? p : (char *)"";
}

/*
 * ApiVersions at a version we do not know: a v0 body with UNSUPPORTED_VERSION
 * and our ranges, so the client can pick one (KIP-511).
 */
static void api_versions_unsupported(struct kafka *k, struct conn_req *req, const struct kc_req_hdr *h)
{
	struct kreq *kr = calloc(1, sizeof(*kr));

	if (!kr) {
		conn_close(req->c, "out of memory");
		return;
	}
	kr->k = k;
	kr->req = req;
	kr->hdr = *h;
	kr->api = kc_api_find(18);
	kr->ver = 0;
	kr->flexible = 0;
	arena_init(&kr->a, 1 << 20);
	kr->resp = arena_alloc(&kr->a, kr->api->resp->size);
	if (!kr->resp) {
		kreq_fail(kr, "out of memory");
		return;
	}
	kc_defaults(kr->api->resp, kr->resp);
	api_versions_fill(kr);
	((struct api_versions_resp *)kr->resp)->error_code = KERR_UNSUPPORTED_VERSION;
	kreq_reply(kr);
}

void kafka_on_request(struct conn_req *req, void *arg)
{
	struct kafka *k = arg;
	struct sl_rd r;
	struct kc_req_hdr h;
	const struct kc_api *api = NULL;
	char why[160];

	rd_init(&r, req->frame, req->len);
	int rc = kc_decode_request_header(&r, &h, &api);
	if (rc == SL_E_NOTFOUND) {
		if (h.api_key == 18) {
			api_versions_unsupported(k, req, &h);
			return;
		}
		snprintf(why, sizeof(why), "unsupported request: api key %d version %d",
			 h.api_key, h.api_version);
		conn_close(req->c, why);
		return;
	}
	if (rc != 0) {
		snprintf(why, sizeof(why), "malformed request header: %s", sl_strerror(rc));
		conn_close(req->c, why);
		return;
	}
	const struct kapi *ka = kapi_find(h.api_key);
	struct kreq *kr = calloc(1, sizeof(*kr));
	if (!ka || !kr) {
		free(kr);
		conn_close(req->c, ka ? "out of memory" : "api not served");
		return;
	}
	kr->k = k;
	kr->req = req;
	kr->hdr = h;
	kr->api = api;
	kr->ver = h.api_version;
	kr->flexible = h.api_version >= api->flex_min;
	arena_init(&kr->a, 8 * req->len + ((size_t)64 << 20));
	req->ctx = kr;
	req->cancel = kreq_cancel;

	kr->body = arena_alloc(&kr->a, api->req->size);
	kr->resp = arena_alloc(&kr->a, api->resp->size);
	if (!kr->body || !kr->resp) {
		kreq_fail(kr, "out of memory");
		return;
	}
	rc = kc_decode(api->req, kr->ver, kr->flexible, &r, &kr->a, kr->body);
	if (rc == 0 && rd_left(&r) != 0)
		rc = SL_E_INVALID;
	if (rc != 0) {
		snprintf(why, sizeof(why), "malformed %s v%d request (correlation id %d): %s",
			 api->name, kr->ver, h.correlation_id,
			 rc == SL_E_INVALID && rd_left(&r) ? "trailing bytes" : sl_strerror(rc));
		kreq_fail(kr, why);
		return;
	}
	kc_defaults(api->resp, kr->resp);
	log_debug("kafka", "%s v%d from %s correlation id %d", api->name, kr->ver,
		  conn_peer(req->c), h.correlation_id);
	ka->handle(kr);
}

static void journal_done(void *arg, int err, int64_t base)
{
	struct kjournal *j = arg;

	if (j->rec) {
		if (err == 0)
			kafka_meta_to_tier(j->k, j->rec, j->reclen);
		free(j->rec);
		j->rec = NULL;
	}
	j->done(j, err);
}

int kafka_journal(struct kafka *k, const struct sl_wr *w, struct kjournal *j)
{
	if (w->err)
		return w->err;
	j->op.fn = journal_done;
	j->op.arg = j;
	j->k = k;
	j->rec = NULL;
	j->reclen = 0;
	if (k->tier) {
		/* The tier learns of the record once it is durable, in log order. */
		if (!(j->rec = malloc(w->len ? w->len : 1)))
			return SL_E_NOMEM;
		memcpy(j->rec, w->p, w->len);
		j->reclen = w->len;
	}
	int rc = store_append_meta(k->st, w->p, w->len, &j->op);
	if (rc != 0) {
		free(j->rec);
		j->rec = NULL;
	}
	return rc;
}

void kafka_meta_to_tier(struct kafka *k, const uint8_t *p, size_t n)
{
	if (!k->tier || n < 1)
		return;
	if (p[0] == 2) {
		kgroups_to_tier(k, p, n);
	} else if (p[0] == 1 && n >= 18 && p[1] == 2) {
		tier_topic_delete(k->tier, p + 2);
	} else if (p[0] == 1 && n >= 18 && p[1] == 1) {
		struct topic *t = topic_find_id(k->reg, p + 2);
		if (!t)
			return;		/* deleted before its creation was durable */
		struct mf_config *c = t->nconfigs ? calloc((size_t)t->nconfigs, sizeof(*c)) : NULL;
		if (t->nconfigs && !c) {
			log_error("kafka", "out of memory telling the tier of topic %s", t->name);
			return;
		}
		for (int32_t i = 0; i < t->nconfigs; i++) {
			c[i].key = t->configs[i].key;
			c[i].value = t->configs[i].value;
		}
		tier_topic_put(k->tier, t->id, t->name, t->npart, c, (uint32_t)t->nconfigs);
		free(c);
	}
}

int kafka_restore(struct kafka *k, const struct manifest *m)
{
	for (size_t i = 0; i < m->ntopics; i++) {
		const struct mf_topic *mt = &m->topics[i];
		struct topic_config *c = mt->nconfigs ? calloc(mt->nconfigs, sizeof(*c)) : NULL;
		struct topic *t;
		if (mt->nconfigs && !c)
			return SL_E_NOMEM;
		for (uint32_t j = 0; j < mt->nconfigs; j++) {
			c[j].key = mt->configs[j].key;
			c[j].value = mt->configs[j].value;
		}
		int rc = topic_create(k->reg, mt->name, strlen(mt->name), mt->npartitions, c,
				      (int32_t)mt->nconfigs, k->cfg->message_max_bytes, mt->id, &t);
		free(c);
		if (rc != 0) {
			log_error("kafka", "cannot restore topic %s from the manifest: %s", mt->name,
				  sl_strerror(rc));
			return rc;
		}
		for (int32_t j = 0; j < mt->npartitions; j++) {
			const struct mf_partition *p = &mt->parts[j];
			int64_t end = p->end > p->log_start ? p->end : p->log_start;
			rc = stream_restore(t->parts[j], p->log_start, end);
			if (rc != 0) {
				log_error("kafka", "cannot restore %s-%d: %s", mt->name, j, sl_strerror(rc));
				return rc;
			}
		}
	}
	for (size_t i = 0; i < m->noffsets; i++) {
		const struct mf_offset *mo = &m->offsets[i];
		struct grp_offset o = {
			.topic = mo->topic,
			.partition = mo->partition,
			.offset = mo->offset,
			.leader_epoch = mo->leader_epoch,
			.metadata = mo->metadata ? mo->metadata : "",
			.commit_ms = mo->commit_ms,
			.expire_ms = mo->expire_ms,
		};
		int rc = grp_offset_put(k->gc, mo->group, &o);
		if (rc != 0) {
			log_error("kafka", "cannot restore the offsets of group %s: %s", mo->group,
				  sl_strerror(rc));
			return rc;
		}
	}
	return 0;
}

static void auto_create_journaled(struct kjournal *j, int err)
{
	if (err)
		log_error("kafka", "journaling an auto-created topic failed: %s", sl_strerror(err));
	free(j);
}

/*
 * Journal records start with a kind: topic records with their version (1),
 * group records with 2 (kafka/groups.c), log-start records with 3
 * (kafka/retention.c), producer-id marks with 4 (kafka/producers.c).
 * A topic's deletion also forgets the offsets
 * committed for it, as it did when it happened.
 */
static void replay_meta(void *arg, const uint8_t *p, size_t n)
{
	struct kafka *k = arg;

	if (n >= 1 && p[0] == 2) {
		kgroups_replay(k, p, n);
		kafka_meta_to_tier(k, p, n);
		return;
	}
	if (n >= 1 && p[0] == KLS_KIND) {
		kls_replay(k, p, n);
		return;
	}
	if (n >= 1 && p[0] == 4) {
		kprod_replay(k, p, n);
		return;
	}
	if (n >= 18 && p[0] == 1 && p[1] == 2) {
		struct topic *t = topic_find_id(k->reg, p + 2);
		if (t)
			grp_offsets_drop_topic(k->gc, t->name);
	}
	topic_replay(k->reg, p, n, k->cfg->message_max_bytes);
	kafka_meta_to_tier(k, p, n);
}

const char *kreq_client_host(struct kreq *kr)
{
	const char *peer = kr->req ? conn_peer(kr->req->c) : "";
	const char *colon = strrchr(peer, ':');
	size_t len = colon ? (size_t)(colon - peer) : strlen(peer);
	char *out = arena_alloc(&kr->a, len + 2);

	if (!out)
		return "";
	out[0] = '/';
	memcpy(out + 1, peer, len);
	out[len + 1] = 0;
	return out;
}

struct topic *kafka_auto_create(struct kafka *k, const char *name, size_t len, int16_t *err)
{
	const char *why;
	struct topic *t;

	if (topic_name_check(name, len, &why) != 0) {
		*err = KERR_INVALID_TOPIC_EXCEPTION;
		return NULL;
	}
	if (!k->cfg->auto_create_topics) {
		*err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		return NULL;
	}
	if (topic_collides(k->reg, name, len)) {
		*err = KERR_INVALID_TOPIC_EXCEPTION;
		return NULL;
	}
	int rc = topic_create(k->reg, name, len, k->cfg->num_partitions, NULL, 0,
			      k->cfg->message_max_bytes, NULL, &t);
	if (rc != 0) {
		*err = KERR_UNKNOWN_SERVER_ERROR;
		return NULL;
	}
	/*
	 * Journaled without waiting: the Metadata answer does not wait for it.
	 * Records produced to the topic come after this one in the log, so no
	 * acknowledged record can outlive its topic; at worst an empty topic is
	 * forgotten by a crash and auto-created again.
	 */
	struct kjournal *j = calloc(1, sizeof(*j));
	struct sl_wr w;
	wr_init(&w, 0);
	if (!j || topic_journal_create(t, &w) != 0 || kafka_journal(k, &w, j) != 0) {
		free(j);
		wr_free(&w);
		topic_delete(k->reg, t);
		log_warn("kafka", "cannot journal auto-created topic %.*s; not created", (int)len, name);
		*err = KERR_LEADER_NOT_AVAILABLE;
		return NULL;
	}
	wr_free(&w);
	j->done = auto_create_journaled;
	log_info("kafka", "auto-created topic %s with %d partitions", t->name, t->npart);
	*err = 0;
	return t;
}
