/*
 * h_offsets.c - ListOffsets: earliest, latest, max timestamp, and by time.
 *
 * Special timestamps: -2 earliest (the log start offset), -1 latest (the
 * high watermark; with no transactions the last stable offset is the same),
 * -3 the record with the largest timestamp (v7).  A timestamp >= 0 finds the
 * first record whose timestamp is at least that; none found is offset -1.
 * v0 answers in its old form, a list holding one offset.
 */
#include "batch.h"
#include "kreq.h"

enum { TS_LATEST = -1, TS_EARLIEST = -2, TS_MAX = -3 };

static int16_t lookup_offset(struct stream *s, int64_t ts, int16_t ver, int64_t *off, int64_t *found_ts)
{
	struct span b;
	int64_t base;
	uint32_t count;

	*found_ts = -1;
	switch (ts) {
	case TS_EARLIEST:
		*off = stream_start(s);
		return 0;
	case TS_LATEST:
		*off = stream_hw(s);
		return 0;
	case TS_MAX:
		if (ver < 7)
			return KERR_UNSUPPORTED_VERSION;
		*off = -1;
		if (stream_max_time(s, &base) < 0)
			return 0;
		size_t got;
		if (stream_read(s, base, 0, 1, &b, 1, &got) == 1)
			batch_find_max_ts(b.p, b.len, base, off, found_ts);
		return 0;
	default:
		if (ts < 0)
			return KERR_INVALID_REQUEST;
		*off = -1;
		if (stream_find_time(s, ts, &b, &base, &count) == 0 &&
		    batch_find_ts(b.p, b.len, base, ts, off, found_ts) != 0) {
			*off = -1;
			*found_ts = -1;
		}
		return 0;
	}
}

void h_list_offsets(struct kreq *kr)
{
	struct kafka *k = kr->k;
	struct list_offsets_req *rq = kr->body;
	struct list_offsets_resp *rs = kr->resp;
	int32_t nt = rq->topics_n > 0 ? rq->topics_n : 0;

	rs->topics_n = nt;
	if (nt > 0 && !(rs->topics = KR_NEW(kr, list_offsets_resp_list_offsets_topic_response, nt)))
		goto nomem;
	for (int32_t i = 0; i < nt; i++) {
		struct list_offsets_req_list_offsets_topic *qt = &rq->topics[i];
		struct list_offsets_resp_list_offsets_topic_response *rt = &rs->topics[i];
		int32_t np = qt->partitions_n > 0 ? qt->partitions_n : 0;
		struct topic *t = qt->name.len > 0 ? topic_find(k->reg, qt->name.p, (size_t)qt->name.len) : NULL;

		rt->name = qt->name;
		rt->partitions_n = np;
		if (np > 0 && !(rt->partitions = KR_NEW(kr, list_offsets_resp_list_offsets_partition_response, np)))
			goto nomem;
		for (int32_t j = 0; j < np; j++) {
			struct list_offsets_req_list_offsets_partition *qp = &qt->partitions[j];
			struct list_offsets_resp_list_offsets_partition_response *rp = &rt->partitions[j];
			int64_t off = -1, ts = -1;

			rp->partition_index = qp->partition_index;
			if (!t || qp->partition_index < 0 || qp->partition_index >= t->npart) {
				rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			rp->error_code = lookup_offset(t->parts[qp->partition_index], qp->timestamp,
						       kr->ver, &off, &ts);
			if (rp->error_code)
				continue;
			rp->offset = off;
			rp->timestamp = ts;
			rp->leader_epoch = 0;
			if (kr->ver == 0) {
				int64_t *old = arena_alloc(&kr->a, sizeof(int64_t));
				if (!old)
					goto nomem;
				*old = off;
				rp->old_style_offsets = old;
				rp->old_style_offsets_n = off >= 0 ? 1 : 0;
			}
		}
	}
	kreq_reply(kr);
	return;
nomem:
	kreq_fail(kr, "ListOffsets response exceeds the request's memory cap");
}
