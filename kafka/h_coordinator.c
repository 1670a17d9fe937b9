/*
 * h_coordinator.c - FindCoordinator.
 *
 * Which broker coordinates a consumer group or a transactional id.  The
 * group and transaction coordinators are not built yet, so every key is
 * answered with COORDINATOR_NOT_AVAILABLE, which clients treat as retriable,
 * and a message saying why.  The API is still advertised: librdkafka 2.0.2
 * enables lz4 compression only when FindCoordinator v0 appears in
 * ApiVersions.  Key types other than group (0) and transaction (1) are
 * INVALID_REQUEST, as in Kafka.
 */
#include "kreq.h"

static int16_t answer(int8_t key_type, const char **msg)
{
	if (key_type != 0 && key_type != 1) {
		*msg = "unknown coordinator key type";
		return KERR_INVALID_REQUEST;
	}
	*msg = key_type == 0 ? "consumer groups are not supported by this broker yet"
			     : "transactions are not supported by this broker yet";
	return KERR_COORDINATOR_NOT_AVAILABLE;
}

void h_find_coordinator(struct kreq *kr)
{
	struct find_coordinator_req *rq = kr->body;
	struct find_coordinator_resp *rs = kr->resp;
	const char *msg;

	if (kr->ver < 4) {
		rs->error_code = answer(rq->key_type, &msg);
		rs->error_message = kstr(msg);
		rs->node_id = -1;
		rs->host = kstr("");
		rs->port = -1;
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
		c->error_code = answer(rq->key_type, &msg);
		c->error_message = kstr(msg);
		c->node_id = -1;
		c->host = kstr("");
		c->port = -1;
	}
	kreq_reply(kr);
}
