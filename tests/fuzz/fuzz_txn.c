/*
 * fuzz_txn.c - libFuzzer target for the transaction coordinator's state
 * machine (kafka/txn.h): its snapshot decoder and record replay, and
 * programs of operations on a few transactional ids.
 *
 * Input: byte 0 chooses the mode.
 *   0: the rest is a snapshot for txn_decode.  One that decodes must
 *      survive its own round trip (encode, decode, encode: the same bytes).
 *   1: the rest is one record for txn_replay, same round trip.
 *   otherwise: a program, one opcode byte and one argument byte each, on
 *      ids "a" .. "d", with a clock that only grows; proposals are completed
 *      or cancelled as the argument says, and every completed record is
 *      replayed into a second coordinator, which must end with the same
 *      snapshot bytes.
 */
#include <stdlib.h>
#include <string.h>
#include "kafka/kerr.h"
#include "kafka/txn.h"

static int64_t next_pid;

static int alloc(void *arg, int64_t *pid)
{
	(void)arg;
	if (next_pid % 7 == 6) {
		next_pid++;
		return SL_E_AGAIN;
	}
	*pid = next_pid++;
	return 0;
}

static void roundtrip(const struct txn_coord *c)
{
	struct sl_wr a, b;
	struct sl_rd r;
	struct txn_coord *d = txn_coord_new(alloc, NULL);

	wr_init(&a, 0);
	wr_init(&b, 0);
	if (txn_encode(c, &a) == 0) {
		rd_init(&r, a.p, a.len);
		if (txn_decode(d, &r) != 0 || rd_left(&r) != 0 || txn_encode(d, &b) != 0 ||
		    a.len != b.len || memcmp(a.p, b.p, a.len) != 0)
			__builtin_trap();
	}
	wr_free(&a);
	wr_free(&b);
	txn_coord_free(d);
}

static void program(const uint8_t *d, size_t n)
{
	static const char *const ids[4] = { "a", "b", "c", "d" };
	static const struct txn_part parts[3] = { { "t", 0 }, { "t", 1 }, { "u", 0 } };
	struct txn_coord *c = txn_coord_new(alloc, NULL), *rep = txn_coord_new(alloc, NULL);
	int64_t now = 0;

	for (size_t i = 0; i + 1 < n; i += 2) {
		uint8_t op = d[i], arg = d[i + 1];
		const char *id = ids[arg & 3];
		const struct txn_meta *m = txn_find(c, id);
		int64_t pid = m ? m->producer_id + ((arg >> 6) == 3) : arg;
		int16_t epoch = m ? (int16_t)(m->epoch - ((arg >> 6) == 2)) : 0;
		struct txn_result r = { 0 };
		int rc = 0;

		now += arg >> 2;
		switch (op % 7) {
		case 0:
			rc = txn_init(c, id, (arg & 0x10) ? 1000 : 0x7fffffff, (arg & 0x20) ? pid : -1,
				      (arg & 0x20) ? epoch : -1, 900000, now, &r);
			break;
		case 1:
			rc = txn_add_partitions(c, id, pid, epoch, parts, 1 + (arg >> 6) % 3, now, &r);
			break;
		case 2:
			rc = txn_add_group(c, id, pid, epoch, (arg & 4) ? "g" : "h", now, &r);
			break;
		case 3:
			rc = txn_end(c, id, pid, epoch, arg & 4, now, &r);
			break;
		case 4:
			rc = txn_markers_done(c, id, now, &r);
			break;
		case 5:
			rc = txn_abort_timed_out(c, id, now, &r);
			break;
		case 6:
			roundtrip(c);
			continue;
		}
		if (rc == 0 && r.proposed) {
			if (!txn_pending(c, id))
				__builtin_trap();
			if (arg & 8) {
				txn_cancel(c, id);
			} else {
				struct sl_wr w;
				wr_init(&w, 0);
				if (txn_record(r.proposed, &w) != 0 || txn_replay(rep, w.p, w.len) != 0)
					__builtin_trap();
				wr_free(&w);
				txn_complete(c, id);
			}
		}
		if (txn_next_deadline(c) < INT64_MAX && !txn_count(c))
			__builtin_trap();
	}
	/* Proposals still pending are cancelled: then the replica matches. */
	for (int i = 0; i < 4; i++)
		txn_cancel(c, ids[i]);
	struct sl_wr a, b;
	wr_init(&a, 0);
	wr_init(&b, 0);
	if (txn_encode(c, &a) == 0 && txn_encode(rep, &b) == 0 &&
	    (a.len != b.len || memcmp(a.p, b.p, a.len) != 0))
		__builtin_trap();
	wr_free(&a);
	wr_free(&b);
	txn_coord_free(c);
	txn_coord_free(rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct txn_coord *c;
	struct sl_rd r;

	next_pid = 0;
	if (n < 1)
		return 0;
	switch (d[0]) {
	case 0:
		c = txn_coord_new(alloc, NULL);
		rd_init(&r, d + 1, n - 1);
		if (txn_decode(c, &r) == 0)
			roundtrip(c);
		txn_coord_free(c);
		break;
	case 1:
		c = txn_coord_new(alloc, NULL);
		if (txn_replay(c, d + 1, n - 1) == 0)
			roundtrip(c);
		txn_coord_free(c);
		break;
	default:
		program(d + 1, n - 1);
		break;
	}
	return 0;
}
