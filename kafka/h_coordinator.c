/*
 * h_coordinator.c - FindCoordinator.
 *
 * This broker coordinates every consumer group: a group key is answered
 * with this node's id and advertised address.  Transactions are not built
 * yet, so a transactional id gets COORDINATOR_NOT_AVAILABLE, which clients
 * treat as retriable, and a message saying why.  An empty group id and key
 * types other than group (0) and transaction (1) are INVALID_REQUEST, as in
 * Kafka.  v4 batches keys; each is answered on its own.
 */
#include "kreq.h"

static void answer(struct kreq *kr, int8_t key_type, struct kc_str key, int16_t *err,
		   struct kc_str *msg, int32_t *node, struct kc_str *host, int32_t *port)
{
	struct kafka *k = kr->k;

	*node = -1;
	*host = kstr("");
	*port = -1;
	*msg = KC_NULL_STR;
	if (key_type != 0 && key_type != 1) {
		*err = KERR_INVALID_REQUEST;
		*msg = kstr("unknown coordinator key type");
	} else if (key_type == 1) {
		*err = KERR_COORDINATOR_NOT_AVAILABLE;
		*msg = kstr("transactions are not supported by this broker yet");
	} else if (key.len <= 0) {
		*err = KERR_INVALID_REQUEST;
		*msg = kstr("empty group id");
	} else {
		*err = KERR_NONE;
		*node = k->cfg->node_id;
		*host = kstr(k->adv_host);
		*port = k->adv_port;
	}
}

void h_find_coordinator(struct kreq *kr)
{
	struct find_coordinator_req *rq = kr->body;
	struct find_coordinator_resp *rs = kr->resp;

	if (kr->ver < 4) {
		answer(kr, rq->key_type, rq->key, &rs->error_code, &rs->error_message, &rs->node_id,
		       &rs->host, &rs->port);
		kreq_reply(kr);
		return;
	}
	int32_t n = rq->coordinator_keys_n > 0 ? rq->coordinator_keys_n : 0;
	rs->coordinators_n = n;
	if (n > 0 && !(rs->coordinators = KR_NEW(kr, find_coordinator_resp_coordinator, n))) {
		kreq_fail(kr, "FindCoordinator response exceeds the request's memory cap");
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		struct find_coordinator_resp_coordinator *c = &rs->coordinators[i];
		c->key = rq->coordinator_keys[i];
		answer(kr, rq->key_type, c->key, &c->error_code, &c->error_message, &c->node_id,
		       &c->host, &c->port);
	}
	kreq_reply(kr);
}
