/*
 * txn.c - the transaction coordinator's state machine (contract and record
 * bytes in txn.h).
 *
 * Ids live in one array sorted by id (binary search; an insert moves the
 * tail).  Each entry holds the installed metadata, when the id exists, and
 * the proposal waiting for txn_complete or txn_cancel, when one does.  An
 * id that only has a proposal (a first InitProducerId not yet durable) is
 * invisible to txn_find and goes with txn_cancel.
 */
#include <stdlib.h>
#include <string.h>
#include "txn.h"
#include "kerr.h"
#include "../kernel/crc32c.h"

#define RECORD_VERSION 1
#define SNAP_VERSION 1

struct entry {
	struct txn_meta m;
	int exists;		/* m is installed */
	struct txn_meta *pend;	/* the proposal, or NULL */
};

struct txn_coord {
	struct entry *e;
	size_t n, cap;
	txn_alloc_fn alloc;
	void *arg;
};

static const char *const names[TXN_NSTATES] = {
	"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort",
	"Dead", "PrepareEpochFence",
};

const char *txn_state_name(enum txn_state s)
{
	return (unsigned)s < TXN_NSTATES ? names[s] : "Unknown";
}

/* ---- metadata values ---- */

static void meta_clear(struct txn_meta *m)
{
	free(m->id);
	for (size_t i = 0; i < m->nparts; i++)
		free(m->parts[i].topic);
	free(m->parts);
	for (size_t i = 0; i < m->ngroups; i++)
		free(m->groups[i]);
	free(m->groups);
	memset(m, 0, sizeof(*m));
}

/* A deep copy of src into dst; SL_E_NOMEM leaves dst cleared. */
static int meta_copy(struct txn_meta *dst, const struct txn_meta *src)
{
	*dst = *src;
	dst->id = NULL;
	dst->parts = NULL;
	dst->groups = NULL;
	dst->nparts = dst->ngroups = 0;
	if (!(dst->id = strdup(src->id)))
		goto nomem;
	if (src->nparts && !(dst->parts = calloc(src->nparts, sizeof(*dst->parts))))
		goto nomem;
	for (; dst->nparts < src->nparts; dst->nparts++) {
		dst->parts[dst->nparts].partition = src->parts[dst->nparts].partition;
		if (!(dst->parts[dst->nparts].topic = strdup(src->parts[dst->nparts].topic)))
			goto nomem;
	}
	if (src->ngroups && !(dst->groups = calloc(src->ngroups, sizeof(*dst->groups))))
		goto nomem;
	for (; dst->ngroups < src->ngroups; dst->ngroups++)
		if (!(dst->groups[dst->ngroups] = strdup(src->groups[dst->ngroups])))
			goto nomem;
	return 0;
nomem:
	meta_clear(dst);
	return SL_E_NOMEM;
}

static void meta_forget_txn(struct txn_meta *m)
{
	for (size_t i = 0; i < m->nparts; i++)
		free(m->parts[i].topic);
	free(m->parts);
	for (size_t i = 0; i < m->ngroups; i++)
		free(m->groups[i]);
	free(m->groups);
	m->parts = NULL;
	m->groups = NULL;
	m->nparts = m->ngroups = 0;
	m->start_ms = -1;
}

static int has_part(const struct txn_meta *m, const char *topic, int32_t partition)
{
	for (size_t i = 0; i < m->nparts; i++)
		if (m->parts[i].partition == partition && strcmp(m->parts[i].topic, topic) == 0)
			return 1;
	return 0;
}

static int has_group(const struct txn_meta *m, const char *group)
{
	for (size_t i = 0; i < m->ngroups; i++)
		if (strcmp(m->groups[i], group) == 0)
			return 1;
	return 0;
}

/* ---- the table ---- */

struct txn_coord *txn_coord_new(txn_alloc_fn alloc, void *arg)
{
	struct txn_coord *c = calloc(1, sizeof(*c));

	if (c) {
		c->alloc = alloc;
		c->arg = arg;
	}
	return c;
}

static void entry_clear(struct entry *e)
{
	if (e->pend) {
		meta_clear(e->pend);
		free(e->pend);
	}
	meta_clear(&e->m);
}

void txn_coord_free(struct txn_coord *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		entry_clear(&c->e[i]);
	free(c->e);
	free(c);
}

/* The index of id, or where it would go (*found 0). */
static size_t locate(const struct txn_coord *c, const char *id, int *found)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = strcmp(c->e[mid].pend && !c->e[mid].exists ? c->e[mid].pend->id : c->e[mid].m.id, id);
		if (d == 0) {
			*found = 1;
			return mid;
		}
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static struct entry *entry_of(const struct txn_coord *c, const char *id)
{
	int found;
	size_t at = locate(c, id, &found);

	return found ? &c->e[at] : NULL;
}

/* A new, empty entry for id at its place; NULL without memory. */
static struct entry *entry_add(struct txn_coord *c, const char *id)
{
	int found;
	size_t at = locate(c, id, &found);

	if (found)
		return &c->e[at];
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct entry *ne = realloc(c->e, cap * sizeof(*ne));
		if (!ne)
			return NULL;
		c->e = ne;
		c->cap = cap;
	}
	memmove(c->e + at + 1, c->e + at, (c->n - at) * sizeof(*c->e));
	memset(&c->e[at], 0, sizeof(c->e[at]));
	c->n++;
	return &c->e[at];
}

static void entry_remove(struct txn_coord *c, struct entry *e)
{
	size_t at = (size_t)(e - c->e);

	entry_clear(e);
	memmove(c->e + at, c->e + at + 1, (c->n - at - 1) * sizeof(*c->e));
	c->n--;
}

const struct txn_meta *txn_find(const struct txn_coord *c, const char *id)
{
	const struct entry *e = entry_of(c, id);

	return e && e->exists ? &e->m : NULL;
}

int txn_pending(const struct txn_coord *c, const char *id)
{
	const struct entry *e = entry_of(c, id);

	return e && e->pend;
}

size_t txn_count(const struct txn_coord *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n; i++)
		n += (size_t)c->e[i].exists;
	return n;
}

void txn_foreach(const struct txn_coord *c, int (*fn)(void *arg, const struct txn_meta *m), void *arg)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].exists && fn(arg, &c->e[i].m))
			return;
}

/* ---- proposals ---- */

static void result(struct txn_result *r, int16_t err)
{
	memset(r, 0, sizeof(*r));
	r->err = err;
	r->producer_id = -1;
	r->epoch = -1;
}

/* Start a proposal from e's installed metadata; NULL without memory. */
static struct txn_meta *propose(struct entry *e)
{
	struct txn_meta *p = malloc(sizeof(*p));

	if (!p || meta_copy(p, &e->m) != 0) {
		free(p);
		return NULL;
	}
	return p;
}

static void proposed(struct entry *e, struct txn_meta *p, struct txn_result *r)
{
	e->pend = p;
	r->proposed = p;
	r->producer_id = p->producer_id;
	r->epoch = p->epoch;
}

/* The checks every request on an existing id starts with; KERR_NONE if it may go on. */
static int16_t check_producer(const struct entry *e, int64_t pid, int16_t epoch)
{
	if (!e || !e->exists || e->m.state == TXN_DEAD || e->m.producer_id != pid)
		return KERR_INVALID_PRODUCER_ID_MAPPING;
	if (e->m.epoch != epoch)
		return KERR_PRODUCER_FENCED;
	if (e->pend)
		return KERR_CONCURRENT_TRANSACTIONS;
	return KERR_NONE;
}

/*
 * The next epoch, up to INT16_MAX, as Kafka's fence bump.  The
 * epoch given up becomes the last one, which a KIP-360 InitProducerId may
 * name, only when remember is set (a client that said which epoch it had,
 * or a timeout): a new instance's bump must fence its zombie for good.
 */
static void bump(struct txn_meta *p, int remember)
{
	p->last_producer_id = remember ? p->producer_id : -1;
	p->last_epoch = remember ? p->epoch : -1;
	/* Clients never get INT16_MAX (init moves to a new id first): it is kept for fencing. */
	if (p->epoch < INT16_MAX)
		p->epoch++;
}

/* start + timeout, saturating: when an open transaction times out. */
static int64_t deadline_of(const struct txn_meta *m)
{
	return m->start_ms > INT64_MAX - m->timeout_ms ? INT64_MAX : m->start_ms + m->timeout_ms;
}

static int is_prepare(enum txn_state s)
{
	return s == TXN_PREPARE_COMMIT || s == TXN_PREPARE_ABORT || s == TXN_PREPARE_EPOCH_FENCE;
}

int txn_init(struct txn_coord *c, const char *id, int32_t timeout_ms, int64_t req_pid,
	     int16_t req_epoch, int32_t max_timeout_ms, int64_t now, struct txn_result *r)
{
	struct entry *e = entry_of(c, id);
	struct txn_meta *p;
	int64_t pid;

	result(r, KERR_NONE);
	if (!id[0] || strlen(id) > TXN_ID_MAX) {
		r->err = KERR_INVALID_REQUEST;
		return 0;
	}
	if (timeout_ms <= 0 || timeout_ms > max_timeout_ms) {
		r->err = KERR_INVALID_TRANSACTION_TIMEOUT;
		return 0;
	}
	if (e && e->pend) {
		r->err = KERR_CONCURRENT_TRANSACTIONS;
		return 0;
	}
	if (!e || !e->exists || e->m.state == TXN_DEAD) {
		/* A new id: a new producer id at epoch 0. */
		int rc = c->alloc(c->arg, &pid);
		if (rc != 0)
			return rc;
		if (!(p = calloc(1, sizeof(*p))) || !(p->id = strdup(id)))
			goto nomem;
		p->producer_id = pid;
		p->last_producer_id = -1;
		p->epoch = 0;
		p->last_epoch = -1;
		p->timeout_ms = timeout_ms;
		p->state = TXN_EMPTY;
		p->start_ms = -1;
		p->update_ms = now;
		if (!e && !(e = entry_add(c, id)))
			goto nomem;
		proposed(e, p, r);
		return 0;
	}
	const struct txn_meta *m = &e->m;
	if (req_pid >= 0) {
		/* KIP-360: the client says which (id, epoch) it had. */
		int current = req_pid == m->producer_id && req_epoch == m->epoch;
		int last = m->last_epoch >= 0 && req_pid == m->last_producer_id &&
			   req_epoch == m->last_epoch;
		if (!current && !last) {
			r->err = KERR_PRODUCER_FENCED;
			return 0;
		}
		if (!current && !is_prepare(m->state) && m->state != TXN_ONGOING) {
			/* A retry of a bump already made: answer what it gave. */
			r->producer_id = m->producer_id;
			r->epoch = m->epoch;
			return 0;
		}
	}
	if (is_prepare(m->state)) {
		r->err = KERR_CONCURRENT_TRANSACTIONS;
		return 0;
	}
	if (!(p = propose(e)))
		return SL_E_NOMEM;
	p->update_ms = now;
	if (m->state == TXN_ONGOING) {
		/* Fence the old producer and abort what it left open; the client retries. */
		bump(p, req_pid >= 0);
		p->state = TXN_PREPARE_ABORT;
		proposed(e, p, r);
		r->err = KERR_CONCURRENT_TRANSACTIONS;
		r->fenced_abort = 1;
		return 0;
	}
	if (p->epoch >= INT16_MAX - 1) {
		/* The epoch is used up: a new producer id. */
		int rc = c->alloc(c->arg, &pid);
		if (rc != 0) {
			meta_clear(p);
			free(p);
			return rc;
		}
		p->last_producer_id = req_pid >= 0 ? p->producer_id : -1;
		p->last_epoch = req_pid >= 0 ? p->epoch : -1;
		p->producer_id = pid;
		p->epoch = 0;
	} else {
		bump(p, req_pid >= 0);
	}
	p->timeout_ms = timeout_ms;
	p->state = TXN_EMPTY;
	meta_forget_txn(p);
	proposed(e, p, r);
	return 0;
nomem:
	if (p)
		meta_clear(p);
	free(p);
	return SL_E_NOMEM;
}

/* The common part of AddPartitionsToTxn and AddOffsetsToTxn; *out NULL when nothing changes. */
static int16_t begin_add(struct entry *e, int64_t pid, int16_t epoch)
{
	int16_t err = check_producer(e, pid, epoch);

	if (err == KERR_NONE && is_prepare(e->m.state))
		err = KERR_CONCURRENT_TRANSACTIONS;
	return err;
}

int txn_add_partitions(struct txn_coord *c, const char *id, int64_t pid, int16_t epoch,
		       const struct txn_part *parts, size_t n, int64_t now, struct txn_result *r)
{
	struct entry *e = entry_of(c, id);
	size_t fresh = 0;

	result(r, begin_add(e, pid, epoch));
	if (r->err != KERR_NONE)
		return 0;
	for (size_t i = 0; i < n; i++)
		fresh += !has_part(&e->m, parts[i].topic, parts[i].partition);
	if (e->m.state == TXN_ONGOING && fresh == 0)
		return 0;
	if (e->m.nparts + fresh > TXN_MAX_PARTS) {
		r->err = KERR_INVALID_REQUEST;
		return 0;
	}
	struct txn_meta *p = propose(e);
	struct txn_part *np = p ? realloc(p->parts, (p->nparts + fresh + 1) * sizeof(*np)) : NULL;
	if (!np)
		goto nomem;
	p->parts = np;
	for (size_t i = 0; i < n; i++) {
		if (has_part(p, parts[i].topic, parts[i].partition))
			continue;
		if (!(np[p->nparts].topic = strdup(parts[i].topic)))
			goto nomem;
		np[p->nparts++].partition = parts[i].partition;
	}
	if (p->state != TXN_ONGOING)
		p->start_ms = now;
	p->state = TXN_ONGOING;
	p->update_ms = now;
	proposed(e, p, r);
	return 0;
nomem:
	if (p) {
		meta_clear(p);
		free(p);
	}
	return SL_E_NOMEM;
}

int txn_add_group(struct txn_coord *c, const char *id, int64_t pid, int16_t epoch, const char *group,
		  int64_t now, struct txn_result *r)
{
	struct entry *e = entry_of(c, id);

	result(r, begin_add(e, pid, epoch));
	if (r->err != KERR_NONE)
		return 0;
	if (e->m.state == TXN_ONGOING && has_group(&e->m, group))
		return 0;
	struct txn_meta *p = propose(e);
	char **ng = p ? realloc(p->groups, (p->ngroups + 1) * sizeof(*ng)) : NULL;
	if (!ng)
		goto nomem;
	p->groups = ng;
	if (!has_group(p, group)) {
		if (!(ng[p->ngroups] = strdup(group)))
			goto nomem;
		p->ngroups++;
	}
	if (p->state != TXN_ONGOING)
		p->start_ms = now;
	p->state = TXN_ONGOING;
	p->update_ms = now;
	proposed(e, p, r);
	return 0;
nomem:
	if (p) {
		meta_clear(p);
		free(p);
	}
	return SL_E_NOMEM;
}

int txn_end(struct txn_coord *c, const char *id, int64_t pid, int16_t epoch, int commit, int64_t now,
	    struct txn_result *r)
{
	struct entry *e = entry_of(c, id);
	enum txn_state prep = commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT;
	enum txn_state done = commit ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT;

	result(r, check_producer(e, pid, epoch));
	if (r->err != KERR_NONE)
		return 0;
	switch (e->m.state) {
	case TXN_ONGOING: {
		struct txn_meta *p = propose(e);
		if (!p)
			return SL_E_NOMEM;
		p->state = prep;
		p->update_ms = now;
		proposed(e, p, r);
		return 0;
	}
	case TXN_PREPARE_COMMIT:
	case TXN_PREPARE_ABORT:
		r->err = e->m.state == prep ? KERR_CONCURRENT_TRANSACTIONS : KERR_INVALID_TXN_STATE;
		return 0;
	case TXN_COMPLETE_COMMIT:
	case TXN_COMPLETE_ABORT:
		/* A retry of an end that completed is answered as it was. */
		r->err = e->m.state == done ? KERR_NONE : KERR_INVALID_TXN_STATE;
		return 0;
	default:
		r->err = KERR_INVALID_TXN_STATE;
		return 0;
	}
}

/*
 * The start of a change the broker makes on its own (not a client's): id
 * must exist, not be pending, and be in one of the states in mask (bits of
 * enum txn_state).  0 and *ep, *pp (the proposal to fill, then proposed()),
 * or SL_E_NOTFOUND, SL_E_AGAIN, SL_E_INVALID, SL_E_NOMEM.
 */
static int own_change(struct txn_coord *c, const char *id, unsigned mask, struct txn_result *r,
		      struct entry **ep, struct txn_meta **pp)
{
	struct entry *e = entry_of(c, id);

	result(r, KERR_NONE);
	if (!e || !e->exists)
		return SL_E_NOTFOUND;
	if (e->pend)
		return SL_E_AGAIN;
	if (!(mask & (1u << e->m.state)))
		return SL_E_INVALID;
	if (!(*pp = propose(e)))
		return SL_E_NOMEM;
	*ep = e;
	return 0;
}

int txn_markers_done(struct txn_coord *c, const char *id, int64_t now, struct txn_result *r)
{
	struct entry *e;
	struct txn_meta *p;
	int rc = own_change(c, id, 1u << TXN_PREPARE_COMMIT | 1u << TXN_PREPARE_ABORT, r, &e, &p);

	if (rc != 0)
		return rc;
	p->state = p->state == TXN_PREPARE_COMMIT ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT;
	p->update_ms = now;
	meta_forget_txn(p);
	proposed(e, p, r);
	return 0;
}

int txn_abort_timed_out(struct txn_coord *c, const char *id, int64_t now, struct txn_result *r)
{
	struct entry *e;
	struct txn_meta *p;
	int rc = own_change(c, id, 1u << TXN_ONGOING, r, &e, &p);

	if (rc != 0)
		return rc;
	/* The producer is fenced, but may come back with KIP-360 and its old epoch. */
	bump(p, 1);
	p->state = TXN_PREPARE_ABORT;
	p->update_ms = now;
	proposed(e, p, r);
	return 0;
}

void txn_complete(struct txn_coord *c, const char *id)
{
	struct entry *e = entry_of(c, id);

	if (!e || !e->pend)
		return;
	struct txn_meta *p = e->pend;
	e->pend = NULL;
	meta_clear(&e->m);
	e->m = *p;
	e->exists = 1;
	free(p);
	if (e->m.state == TXN_DEAD)
		entry_remove(c, e);
}

void txn_cancel(struct txn_coord *c, const char *id)
{
	struct entry *e = entry_of(c, id);

	if (!e || !e->pend)
		return;
	meta_clear(e->pend);
	free(e->pend);
	e->pend = NULL;
	if (!e->exists)
		entry_remove(c, e);
}

void txn_timed_out(const struct txn_coord *c, int64_t now, int (*fn)(void *arg, const char *id), void *arg)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct entry *e = &c->e[i];
		if (e->exists && !e->pend && e->m.state == TXN_ONGOING && now >= deadline_of(&e->m) &&
		    fn(arg, e->m.id))
			return;
	}
}

int64_t txn_next_deadline(const struct txn_coord *c)
{
	int64_t best = INT64_MAX;

	for (size_t i = 0; i < c->n; i++) {
		const struct entry *e = &c->e[i];
		/* A pending id is not aborted until its write lands: no deadline for it meanwhile. */
		if (e->exists && !e->pend && e->m.state == TXN_ONGOING && deadline_of(&e->m) < best)
			best = deadline_of(&e->m);
	}
	return best;
}

/* ---- bytes ---- */

static void wr_str16(struct sl_wr *w, const char *s)
{
	size_t n = strlen(s);

	wr_u16(w, (uint16_t)n);
	wr_bytes(w, s, n);
}

int txn_record(const struct txn_meta *m, struct sl_wr *w)
{
	wr_u8(w, RECORD_VERSION);
	wr_str16(w, m->id);
	wr_u8(w, (uint8_t)m->state);
	wr_i64(w, m->producer_id);
	wr_i64(w, m->last_producer_id);
	wr_i16(w, m->epoch);
	wr_i16(w, m->last_epoch);
	wr_i32(w, m->timeout_ms);
	wr_i64(w, m->start_ms);
	wr_i64(w, m->update_ms);
	wr_u32(w, (uint32_t)m->nparts);
	for (size_t i = 0; i < m->nparts; i++) {
		wr_str16(w, m->parts[i].topic);
		wr_i32(w, m->parts[i].partition);
	}
	wr_u32(w, (uint32_t)m->ngroups);
	for (size_t i = 0; i < m->ngroups; i++)
		wr_str16(w, m->groups[i]);
	return w->err;
}

/* A NUL-terminated copy of a u16-length string; 0, SL_E_SHORT, SL_E_NOMEM. */
static int rd_str16(struct sl_rd *r, char **out)
{
	uint16_t n;
	const uint8_t *p;

	if (rd_u16(r, &n) || rd_bytes(r, n, &p))
		return SL_E_SHORT;
	if (!(*out = malloc((size_t)n + 1)))
		return SL_E_NOMEM;
	memcpy(*out, p, n);
	(*out)[n] = 0;
	return 0;
}

/* One record into m (cleared on error). */
static int read_meta(struct sl_rd *r, struct txn_meta *m)
{
	uint8_t ver, state;
	uint32_t np, ng;
	int rc;

	memset(m, 0, sizeof(*m));
	if (rd_u8(r, &ver))
		return SL_E_SHORT;
	if (ver != RECORD_VERSION)
		return SL_E_INVALID;
	if ((rc = rd_str16(r, &m->id)) != 0)
		goto fail;
	rc = SL_E_SHORT;
	if (rd_u8(r, &state) || rd_i64(r, &m->producer_id) || rd_i64(r, &m->last_producer_id) ||
	    rd_i16(r, &m->epoch) || rd_i16(r, &m->last_epoch) || rd_i32(r, &m->timeout_ms) ||
	    rd_i64(r, &m->start_ms) || rd_i64(r, &m->update_ms) || rd_u32(r, &np))
		goto fail;
	rc = SL_E_INVALID;
	/* What this coordinator writes, and nothing else (PREPARE_EPOCH_FENCE never is). */
	int open = state == TXN_ONGOING || state == TXN_PREPARE_COMMIT || state == TXN_PREPARE_ABORT;
	if (state >= TXN_NSTATES || state == TXN_PREPARE_EPOCH_FENCE || !m->id[0] ||
	    m->producer_id < 0 || m->last_producer_id < -1 || m->epoch < 0 || m->last_epoch < -1 ||
	    m->timeout_ms <= 0 || (open ? m->start_ms < 0 : m->start_ms != -1) ||
	    np > TXN_MAX_PARTS || np > rd_left(r) / 6 || (np && !open))
		goto fail;
	m->state = (enum txn_state)state;
	if (np && !(m->parts = calloc(np, sizeof(*m->parts)))) {
		rc = SL_E_NOMEM;
		goto fail;
	}
	for (; m->nparts < np; m->nparts++) {
		struct txn_part *p = &m->parts[m->nparts];
		if ((rc = rd_str16(r, &p->topic)) != 0)
			goto fail;
		if (rd_i32(r, &p->partition)) {
			m->nparts++;
			rc = SL_E_SHORT;
			goto fail;
		}
		if (!p->topic[0] || p->partition < 0) {
			m->nparts++;
			rc = SL_E_INVALID;
			goto fail;
		}
	}
	rc = SL_E_SHORT;
	if (rd_u32(r, &ng))
		goto fail;
	rc = SL_E_INVALID;
	if (ng > rd_left(r) / 2 || (ng && !open))
		goto fail;
	if (ng && !(m->groups = calloc(ng, sizeof(*m->groups)))) {
		rc = SL_E_NOMEM;
		goto fail;
	}
	for (; m->ngroups < ng; m->ngroups++)
		if ((rc = rd_str16(r, &m->groups[m->ngroups])) != 0)
			goto fail;
	return 0;
fail:
	meta_clear(m);
	return rc;
}

/* Install m (taken) as id's metadata, whatever was there; DEAD removes it. */
static int install(struct txn_coord *c, struct txn_meta *m)
{
	struct entry *e = entry_of(c, m->id);

	if (m->state == TXN_DEAD) {
		if (e)
			entry_remove(c, e);
		meta_clear(m);
		return 0;
	}
	if (!e && !(e = entry_add(c, m->id))) {
		meta_clear(m);
		return SL_E_NOMEM;
	}
	meta_clear(&e->m);
	e->m = *m;
	e->exists = 1;
	return 0;
}

int txn_replay(struct txn_coord *c, const uint8_t *p, size_t n)
{
	struct sl_rd r;
	struct txn_meta m;
	int rc;

	rd_init(&r, p, n);
	if ((rc = read_meta(&r, &m)) != 0)
		return rc;
	if (rd_left(&r) != 0) {
		meta_clear(&m);
		return SL_E_INVALID;
	}
	return install(c, &m);
}

int txn_encode(const struct txn_coord *c, struct sl_wr *w)
{
	size_t start = w->len;

	wr_u8(w, SNAP_VERSION);
	wr_u32(w, (uint32_t)txn_count(c));
	for (size_t i = 0; i < c->n; i++) {
		size_t at;
		if (!c->e[i].exists)
			continue;
		if (wr_reserve(w, 4, &at) != 0)
			return w->err;
		int rc = txn_record(&c->e[i].m, w);
		if (rc != 0)
			return rc;
		wr_patch_u32(w, at, (uint32_t)(w->len - at - 4));
	}
	if (w->err)
		return w->err;
	return wr_u32(w, crc32c(0, w->p + start, w->len - start));
}

int txn_decode(struct txn_coord *c, struct sl_rd *r)
{
	struct sl_rd s = *r;
	const uint8_t *begin;
	uint8_t ver;
	uint32_t n, crc;
	int rc;

	if (rd_left(r) < 9)
		return SL_E_SHORT;
	begin = r->p + r->off;
	if (rd_u8(&s, &ver) || rd_u32(&s, &n))
		return SL_E_SHORT;
	if (ver != SNAP_VERSION || n > TXN_MAX_IDS || n > rd_left(&s) / 4)
		return SL_E_INVALID;
	/* Check the whole snapshot's frame and CRC before applying any of it. */
	struct sl_rd t = s;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t len;
		if (rd_u32(&t, &len) || rd_skip(&t, len))
			return SL_E_SHORT;
	}
	size_t body = (size_t)(t.p + t.off - begin);
	if (rd_u32(&t, &crc))
		return SL_E_SHORT;
	if (crc != crc32c(0, begin, body))
		return SL_E_CORRUPT;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t len;
		const uint8_t *p;
		if (rd_u32(&s, &len) || rd_bytes(&s, len, &p))
			return SL_E_SHORT;
		if ((rc = txn_replay(c, p, len)) != 0)
			return rc;
	}
	*r = t;
	return 0;
}
