/*
 * fuzz_pstate.c - libFuzzer target for the producer-state engine
 * (kafka/pstate.h): its snapshot decoder, and programs of produce, replay,
 * expiry, truncation and id allocation.
 *
 * Input: byte 0 chooses the mode.
 *   bit 0 set: the rest is a snapshot for pst_decode; bit 1 also recomputes
 *     its CRC (when it is long enough to have one) so the fuzzer gets past
 *     the checksum to the body's rules.  A snapshot that decodes must
 *     survive its own round trip: encode, decode, encode gives the same
 *     bytes.
 *   bit 0 clear: the rest is a program, one opcode byte and its arguments
 *     each, on one table with producer ids 0..7 (and -1), a partition end
 *     offset that only grows, and a wall clock that moves both ways.
 *
 * Besides "never crash, never leak", it checks what the engine promises:
 * a batch let through and appended is a DUPLICATE of itself at once, with
 * the offsets it was given; a retry of a cached batch with the entry's epoch
 * is always a DUPLICATE; a DUPLICATE reports a batch with the same
 * sequences; rejections carry only the three errors of the rules; every
 * entry keeps the table's invariants (pstate.c); a snapshot round-trips to
 * the same bytes and the same verdicts; the allocator never hands out an id
 * twice or one at or above the installed durable mark.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kafka/kerr.h"
#include "kafka/pstate.h"
#include "kernel/buf.h"
#include "kernel/crc32c.h"

#define NPID 8

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

struct prog {
	const uint8_t *p;
	size_t n, off;
};

static uint32_t take(struct prog *g, int bytes)
{
	uint32_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | (g->off < g->n ? g->p[g->off++] : 0);
	return v;
}

static void check_entry(const struct pst_entry *e)
{
	if (e->producer_id < 0 || e->nbatches < 0 || e->nbatches > PST_BATCHES)
		__builtin_trap();
	for (int k = 0; k < e->nbatches; k++) {
		const struct pst_meta *m = &e->batch[k];
		int64_t delta = m->last_offset - m->first_offset;
		if (m->first_seq < 0 || m->last_seq < 0 || m->first_offset < 0 || delta < 0 ||
		    delta >= INT32_MAX || pst_last_seq(m->first_seq, (int32_t)(delta + 1)) != m->last_seq)
			__builtin_trap();
		if (k && m->first_offset <= e->batch[k - 1].last_offset)
			__builtin_trap();
	}
}

static void check_table(const struct pst_table *t)
{
	size_t found = 0;

	for (int64_t pid = -1; pid < NPID; pid++) {
		const struct pst_entry *e = pst_find(t, pid);
		if (e) {
			if (e->producer_id != pid)
				__builtin_trap();
			check_entry(e);
			found++;
		}
	}
	if (found != pst_count(t))
		__builtin_trap();
}

/* Encode, decode, encode: the same bytes.  Returns the decoded table. */
static struct pst_table *roundtrip(const struct pst_table *t)
{
	struct sl_wr w1, w2;
	struct sl_rd r;
	struct pst_table *u = NULL;

	wr_init(&w1, 0);
	wr_init(&w2, 0);
	if (pst_encode(t, &w1) != 0)
		goto out;	/* out of memory only */
	rd_init(&r, w1.p, w1.len);
	if (pst_decode(&r, &u) != 0 || rd_left(&r) != 0 || pst_count(u) != pst_count(t))
		__builtin_trap();
	if (pst_encode(u, &w2) != 0 || w1.len != w2.len || memcmp(w1.p, w2.p, w1.len) != 0)
		__builtin_trap();
out:
	wr_free(&w1);
	wr_free(&w2);
	return u;
}

static void fuzz_snapshot(const uint8_t *d, size_t n, int fixcrc)
{
	struct pst_table *t = NULL, *u;
	struct sl_rd r;
	uint8_t *c = NULL;
	size_t save_off;

	if (fixcrc && n >= 9) {
		/* Make the length field and the CRC agree with the bytes given. */
		c = malloc(n);
		if (!c)
			return;
		memcpy(c, d, n);
		sl_store_be32(c + 1, (uint32_t)(n - 9));
		sl_store_be32(c + n - 4, crc32c(0, c, n - 4));
		d = c;
	}
	rd_init(&r, d, n);
	save_off = r.off;
	if (pst_decode(&r, &t) != 0) {
		if (t || r.off != save_off)
			__builtin_trap();
	} else {
		for (int64_t pid = 0; pid < NPID; pid++)
			if (pst_find(t, pid))
				check_entry(pst_find(t, pid));
		u = roundtrip(t);
		pst_table_free(u);
		/* The table works after decoding: append and expire anything. */
		pst_expire(t, INT64_MAX, 0);
		if (pst_count(t) != 0)
			__builtin_trap();
	}
	pst_table_free(t);
	free(c);
}

/* One produce: check, and append when told to; then the promises. */
static void produce(struct pst_table *t, struct prog *g, int64_t *end, int64_t now)
{
	uint8_t pb = (uint8_t)take(g, 1), sel = (uint8_t)take(g, 1);
	int64_t pid = pb == 0xFF ? -1 : pb % NPID;
	int16_t epoch = (int16_t)((int8_t)take(g, 1) % 8);
	int32_t count = (int32_t)(take(g, 1) % 20) - 1;	/* -1..18 */
	const struct pst_entry *e = pst_find(t, pid);
	struct pst_batch b;
	struct pst_meta dup;
	int16_t err;
	int retry = 0;

	b.producer_id = pid;
	b.epoch = epoch;
	b.count = count == 18 ? INT32_MAX - (int32_t)(take(g, 1) % 4) : count;
	switch (sel % 6) {
	case 0:		/* the next one expected */
		b.first_seq = e && e->nbatches ?
			pst_last_seq(e->batch[e->nbatches - 1].last_seq, 2) : 0;
		break;
	case 1:
		b.first_seq = 0;
		break;
	case 2:
		b.first_seq = (int32_t)take(g, 4);
		break;
	case 3:
		b.first_seq = INT32_MAX - (int32_t)(take(g, 1) % 20);
		break;
	case 4:		/* a retry of a cached batch */
		if (e && e->nbatches) {
			const struct pst_meta *m = &e->batch[take(g, 1) % e->nbatches];
			b.first_seq = m->first_seq;
			b.count = (int32_t)(m->last_offset - m->first_offset + 1);
			b.epoch = e->epoch;
			retry = 1;
		} else {
			b.first_seq = 0;
		}
		break;
	default:
		b.first_seq = (int32_t)(take(g, 1) % 40);
		break;
	}
	switch (pst_check(t, &b, &err, &dup)) {
	case PST_APPEND:
		if (err != KERR_NONE || retry)
			__builtin_trap();
		if (pid < 0 || b.count > 1000000)
			break;		/* huge batches are only checked: offsets stay small */
		if (pst_append(t, &b, *end, now, now) != 0)
			break;			/* out of memory */
		if (pst_check(t, &b, &err, &dup) != PST_DUPLICATE || dup.first_offset != *end ||
		    dup.last_offset != *end + b.count - 1 || dup.max_timestamp != now)
			__builtin_trap();
		*end += b.count;
		break;
	case PST_DUPLICATE:
		if (err != KERR_NONE || pid < 0 || dup.first_seq != b.first_seq ||
		    dup.last_seq != pst_last_seq(b.first_seq, b.count) ||
		    dup.last_offset - dup.first_offset != (int64_t)b.count - 1)
			__builtin_trap();
		break;
	case PST_REJECT:
		if (retry || (err != KERR_INVALID_RECORD && err != KERR_INVALID_PRODUCER_EPOCH &&
			      err != KERR_OUT_OF_ORDER_SEQUENCE_NUMBER))
			__builtin_trap();
		break;
	default:
		__builtin_trap();
	}
}

static void fuzz_program(const uint8_t *d, size_t n)
{
	struct prog g = { d, n, 0 };
	struct pst_table *t = pst_table_new(), *u;
	struct pst_alloc a;
	int64_t end = 0, now = 1000, last_id = -1, mark;
	int steps = 0;

	if (!t || pst_alloc_init(&a, 0, 1 + (int64_t)(take(&g, 1) % 5)) != 0)
		__builtin_trap();
	while (g.off < g.n && steps++ < 4096) {
		uint8_t op = (uint8_t)take(&g, 1);
		switch (op % 9) {
		case 0: case 1: case 2:
			produce(t, &g, &end, now);
			break;
		case 3: {	/* a replayed batch at any offset (below: nothing) */
			struct pst_batch b = { take(&g, 1) % NPID, (int16_t)(take(&g, 1) % 4),
					       (int32_t)(take(&g, 1) % 50), (int32_t)(take(&g, 1) % 9) };
			int64_t off = end - (int64_t)(take(&g, 1) % 64);
			if (pst_append(t, &b, off, 0, now) == 0 && off >= 0 && b.count > 0 &&
			    off + b.count > end)
				end = off + b.count;
			break;
		}
		case 4:		/* time moves, mostly forward */
			now += (int64_t)take(&g, 2) - 4096;
			break;
		case 5:
			pst_expire(t, now, (int64_t)take(&g, 2) - 16);
			break;
		case 6:
			pst_truncate_head(t, end - (int64_t)(take(&g, 1) % 64));
			break;
		case 7:
			if (take(&g, 1) & 1) {
				pst_remove(t, take(&g, 1) % NPID);
			} else {
				u = roundtrip(t);
				if (u) {
					pst_table_free(t);
					t = u;
				}
			}
			break;
		default: {	/* producer ids */
			int64_t id;
			int rc = pst_alloc_next(&a, &id);
			if (rc == 0) {
				if (id <= last_id || id >= a.limit)
					__builtin_trap();
				last_id = id;
			} else if (rc != SL_E_AGAIN || a.next < a.limit) {
				__builtin_trap();
			} else if (pst_alloc_reserve(&a, &mark) == 0) {
				if (mark <= a.limit)
					__builtin_trap();
				pst_alloc_install(&a, (take(&g, 1) & 1) ? mark : a.limit);
			}
			break;
		}
		}
		check_table(t);
	}
	u = roundtrip(t);
	pst_table_free(u);
	pst_table_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (n == 0)
		return 0;
	if (d[0] & 1)
		fuzz_snapshot(d + 1, n - 1, d[0] & 2);
	else
		fuzz_program(d + 1, n - 1);
	return 0;
}
