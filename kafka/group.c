/*
 * group.c - the consumer group coordinator engine: Kafka's classic rebalance
 * protocol (GroupCoordinator and GroupMetadata of Kafka 3.x) and the
 * committed-offsets table.  The contract and the state diagram are in
 * group.h; this comment holds what the engine keeps true between calls.
 *
 * Where Kafka keeps timers in purgatories, the engine keeps deadlines in the
 * structs and grp_tick() acts on those that passed:
 *   - a member's session (m->deadline), checked only while the member is not
 *     parked (a JoinGroup during a rebalance, or a SyncGroup);
 *   - a pending member id's session (handed out with MEMBER_ID_REQUIRED);
 *   - g->join_deadline in PreparingRebalance: the end of the initial delay
 *     (g->initial_delay) or of the largest rebalance timeout of the members;
 *   - g->sync_deadline in CompletingRebalance and Stable while some member of
 *     the generation has not sent SyncGroup (Kafka's pending-sync expiry).
 *
 * Invariants, true whenever no call is running:
 *   1. g->leader is NULL iff g->nmembers == 0, else it is the leader
 *      member's own id string.
 *   2. m->joined is set only in PreparingRebalance; it is cleared for every
 *      member when a rebalance completes.  m->join != NULL implies it.
 *   3. m->sync != NULL only in CompletingRebalance, with m->synced set.
 *   4. g->protocol != NULL in CompletingRebalance and Stable, and NULL while
 *      Empty; a PreparingRebalance that follows a generation keeps the old
 *      one until the next is chosen, as Kafka's protocolName does.
 *   5. While the group has members, at least one protocol is supported by
 *      every member (each join is checked against all members, the joining
 *      one included with its old protocols), so a protocol can be chosen.
 *   6. An Empty group with no members, pending ids or offsets is removed
 *      (Kafka's Dead state, which ends at once here) by the next
 *      grp_expire_offsets pass, as Kafka's periodic cleanup does, so a
 *      group its last member left is still described as Empty until then;
 *      calls that delete offsets, or create a group and then fail, remove
 *      it at once.
 *   7. g->mcap >= g->nmembers, so answering the leader never allocates.
 *
 * Callbacks run while these may be broken; that is why a callback may only
 * cancel waits (which just unhooks them) and make no other call.
 *
 * Costs: members and pending ids are lists scanned per call, which suits
 * groups of up to a few hundred members; groups and offsets are hashed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/random.h>
#include "group.h"
#include "kerr.h"
#include "../kernel/err.h"

/* A rebalance that could not complete for want of memory tries again this soon. */
#define RETRY_MS 100
/* grp_tick passes over one group at most this many times per call (timeouts of 0 ms). */
#define MAX_PASSES 8

struct grp_pending {
	char *id;
	int64_t deadline;
	struct grp_pending *next;
};

struct grp_coord {
	struct grp_config cfg;
	struct group **tab;		/* hash by id, tabsize a power of two */
	size_t tabsize, ngroups;
	struct group *head, *tail;	/* in order of creation */
	uint64_t idseq;			/* member ids if getrandom fails */
};

/* ---- small helpers ---- */

static const char *nz(const char *s)
{
	return s ? s : "";
}

static char *dupstr(const char *s)
{
	size_t n = strlen(nz(s)) + 1;
	char *p = malloc(n);

	if (p)
		memcpy(p, nz(s), n);
	return p;
}

/* NULL equals only NULL. */
static int streq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static size_t hash_bytes(size_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ULL;
	return h;
}

static size_t hash_str(const char *s)
{
	return hash_bytes(0xcbf29ce484222325ULL, s, strlen(s));
}

static int64_t default_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

const char *grp_state_name(enum grp_state s)
{
	switch (s) {
	case GRP_EMPTY: return "Empty";
	case GRP_PREPARING: return "PreparingRebalance";
	case GRP_COMPLETING: return "CompletingRebalance";
	case GRP_STABLE: return "Stable";
	case GRP_DEAD: return "Dead";
	}
	return "Unknown";
}

int grp_state_parse(const char *s)
{
	for (int i = GRP_EMPTY; i <= GRP_DEAD; i++)
		if (s && strcasecmp(s, grp_state_name((enum grp_state)i)) == 0)
			return i;
	return -1;
}

/* ---- members ---- */

static void protocols_free(struct grp_protocol *p, int n)
{
	for (int i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].meta);
	}
	free(p);
}

static int protocols_copy(const struct grp_protocol *src, int n, struct grp_protocol **out)
{
	struct grp_protocol *p;

	*out = NULL;
	if (n <= 0)
		return 0;
	p = calloc((size_t)n, sizeof(*p));
	if (!p)
		return SL_E_NOMEM;
	for (int i = 0; i < n; i++) {
		p[i].name = dupstr(src[i].name);
		if (src[i].len) {
			p[i].meta = malloc(src[i].len);
			if (p[i].meta)
				memcpy(p[i].meta, src[i].meta, src[i].len);
		}
		p[i].len = src[i].len;
		if (!p[i].name || (src[i].len && !p[i].meta)) {
			protocols_free(p, i + 1);
			return SL_E_NOMEM;
		}
	}
	*out = p;
	return 0;
}

/* Kafka's MemberMetadata.matches: the same protocols, metadata and order. */
static int protocols_match(const struct grp_member *m, const struct grp_protocol *p, int n)
{
	if (n < 0)
		n = 0;
	if (m->nprotocols != n)
		return 0;
	for (int i = 0; i < n; i++) {
		const struct grp_protocol *a = &m->protocols[i];
		if (strcmp(a->name, nz(p[i].name)) != 0 || a->len != p[i].len ||
		    (a->len && memcmp(a->meta, p[i].meta, a->len) != 0))
			return 0;
	}
	return 1;
}

static void member_free(struct grp_member *m)
{
	free(m->id);
	free(m->instance_id);
	free(m->client_id);
	free(m->client_host);
	protocols_free(m->protocols, m->nprotocols);
	free(m->assignment);
	free(m);
}

struct grp_member *grp_member_find(struct group *g, const char *member_id)
{
	if (!member_id)
		return NULL;
	for (struct grp_member *m = g->members; m; m = m->next)
		if (strcmp(m->id, member_id) == 0)
			return m;
	return NULL;
}

static struct grp_member *static_find(struct group *g, const char *instance_id)
{
	for (struct grp_member *m = g->members; m; m = m->next)
		if (m->instance_id && strcmp(m->instance_id, instance_id) == 0)
			return m;
	return NULL;
}

const uint8_t *grp_member_meta(const struct grp_member *m, const char *name, size_t *len)
{
	for (int i = 0; i < m->nprotocols; i++)
		if (name && strcmp(m->protocols[i].name, name) == 0) {
			*len = m->protocols[i].len;
			return m->protocols[i].meta;
		}
	*len = 0;
	return NULL;
}

static int is_leader(const struct group *g, const struct grp_member *m)
{
	return g->leader == m->id;
}

static struct grp_member *leader_of(struct group *g)
{
	for (struct grp_member *m = g->members; m; m = m->next)
		if (is_leader(g, m))
			return m;
	return NULL;
}

static int member_supports(const struct grp_member *m, const char *name)
{
	for (int i = 0; i < m->nprotocols; i++)
		if (strcmp(m->protocols[i].name, name) == 0)
			return 1;
	return 0;
}

static int supported_by_all(const struct group *g, const char *name)
{
	for (const struct grp_member *m = g->members; m; m = m->next)
		if (!member_supports(m, name))
			return 0;
	return 1;
}

/*
 * Kafka's supportsProtocols.  A group without members takes any non-empty
 * protocol type with at least one protocol; otherwise the type must be the
 * group's and one protocol must be supported by every member.
 */
static int supports_protocols(const struct group *g, const char *type,
			      const struct grp_protocol *p, int n)
{
	if (g->nmembers == 0)
		return type[0] && n > 0;
	if (!streq(g->protocol_type, type))
		return 0;
	for (int i = 0; i < n; i++)
		if (supported_by_all(g, nz(p[i].name)))
			return 1;
	return 0;
}

/*
 * The candidates are the protocols every member supports; each member votes
 * for the first candidate in its own order; most votes wins, ties going to
 * the leader's order.  The leader supports every candidate, so walking its
 * list visits them all.  NULL only if there is no candidate (invariant 5).
 */
static const char *select_protocol(struct group *g)
{
	struct grp_member *lead = leader_of(g);
	const char *best = NULL;
	int bestvotes = -1;

	if (!lead)
		return NULL;
	for (int i = 0; i < lead->nprotocols; i++) {
		const char *name = lead->protocols[i].name;
		int votes = 0;

		if (!supported_by_all(g, name))
			continue;
		for (struct grp_member *m = g->members; m; m = m->next)
			for (int j = 0; j < m->nprotocols; j++)
				if (supported_by_all(g, m->protocols[j].name)) {
					votes += strcmp(m->protocols[j].name, name) == 0;
					break;
				}
		if (votes > bestvotes) {
			best = name;
			bestvotes = votes;
		}
	}
	return best;
}

static int32_t rebalance_timeout(const struct group *g)
{
	int32_t t = 0;

	for (const struct grp_member *m = g->members; m; m = m->next)
		if (m->rebalance_ms > t)
			t = m->rebalance_ms;
	return t;
}

/*
 * A parked member: its session does not run (Kafka's hasSatisfiedHeartbeat).
 * A member whose wait was cancelled stays parked until the phase ends, as in
 * Kafka, where the callback of a closed connection is still there to call;
 * the phase's end renews its session.
 */
static int awaiting(const struct group *g, const struct grp_member *m)
{
	return m->join || m->sync || (g->state == GRP_PREPARING && m->joined) ||
	       (g->state == GRP_COMPLETING && m->synced);
}

static int mvec_reserve(struct group *g, int n)
{
	const struct grp_member **v;
	int cap;

	if (g->mcap >= n)
		return 0;
	cap = g->mcap ? g->mcap : 4;
	while (cap < n)
		cap *= 2;
	v = realloc(g->mvec, (size_t)cap * sizeof(*v));
	if (!v)
		return SL_E_NOMEM;
	g->mvec = v;
	g->mcap = cap;
	return 0;
}

/* ---- pending member ids ---- */

static struct grp_pending *pending_find(struct group *g, const char *id)
{
	for (struct grp_pending *p = g->pending; p; p = p->next)
		if (strcmp(p->id, id) == 0)
			return p;
	return NULL;
}

static void pending_remove(struct group *g, const char *id)
{
	for (struct grp_pending **pp = &g->pending; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->id, id) == 0) {
			struct grp_pending *p = *pp;
			*pp = p->next;
			free(p->id);
			free(p);
			g->npending--;
			return;
		}
}

/* A fresh member id: prefix "-" and a random (version 4) UUID, unused in g. */
static char *new_member_id(struct grp_coord *c, struct group *g, const char *prefix)
{
	size_t n = strlen(nz(prefix)) + 1 + 36 + 1;
	char *id = malloc(n);
	uint8_t u[16];

	if (!id)
		return NULL;
	do {
		if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u)) {
			/* The pool is ready long before clients connect; a counter keeps ids unique. */
			uint64_t k = ++c->idseq;
			memset(u, 0, sizeof(u));
			memcpy(u + 8, &k, sizeof(k));
		}
		u[6] = (u[6] & 0x0f) | 0x40;
		u[8] = (u[8] & 0x3f) | 0x80;
		snprintf(id, n, "%s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
			 "%02x%02x%02x%02x%02x%02x", nz(prefix), u[0], u[1], u[2], u[3], u[4],
			 u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	} while (grp_member_find(g, id) || pending_find(g, id));
	return id;
}

/* ---- offsets ---- */

static size_t off_hash(const char *topic, int32_t partition)
{
	size_t h = hash_str(topic);
	return hash_bytes(h, &partition, sizeof(partition));
}

struct grp_offset *grp_offset_find(struct group *g, const char *topic, int32_t partition)
{
	if (!g->otab || !topic)
		return NULL;
	for (struct grp_offset *o = g->otab[off_hash(topic, partition) & (g->otab_size - 1)]; o;
	     o = o->hnext)
		if (o->partition == partition && strcmp(o->topic, topic) == 0)
			return o;
	return NULL;
}

/* Grow the offsets hash; on failure the old table stays (longer chains). */
static int otab_grow(struct group *g)
{
	size_t n = g->otab_size ? g->otab_size * 2 : 16;
	struct grp_offset **t = calloc(n, sizeof(*t));

	if (!t)
		return g->otab ? 0 : SL_E_NOMEM;
	for (struct grp_offset *o = g->offsets; o; o = o->next) {
		size_t b = off_hash(o->topic, o->partition) & (n - 1);
		o->hnext = t[b];
		t[b] = o;
	}
	free(g->otab);
	g->otab = t;
	g->otab_size = n;
	return 0;
}

static void offset_free(struct grp_offset *o)
{
	free(o->topic);
	free(o->metadata);
	free(o);
}

typedef int (*off_pred)(const struct group *g, const struct grp_offset *o, const void *arg);

/* Remove every offset pred accepts, telling fn first (if given). */
static void offsets_remove_if(struct group *g, off_pred pred, const void *arg,
			      grp_expire_fn fn, void *fnarg)
{
	struct grp_offset **pp = &g->offsets, *prev = NULL;

	while (*pp) {
		struct grp_offset *o = *pp;
		if (!pred(g, o, arg)) {
			prev = o;
			pp = &o->next;
			continue;
		}
		if (fn)
			fn(fnarg, g, o);
		*pp = o->next;
		if (g->otail == o)
			g->otail = prev;
		for (struct grp_offset **hp = &g->otab[off_hash(o->topic, o->partition) &
						       (g->otab_size - 1)]; *hp; hp = &(*hp)->hnext)
			if (*hp == o) {
				*hp = o->hnext;
				break;
			}
		offset_free(o);
		g->noffsets--;
	}
}

/* ---- groups ---- */

struct grp_coord *grp_coord_new(const struct grp_config *cfg)
{
	struct grp_coord *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cfg = *cfg;
	if (!c->cfg.wall_ms)
		c->cfg.wall_ms = default_wall_ms;
	c->tabsize = 64;
	c->tab = calloc(c->tabsize, sizeof(*c->tab));
	if (!c->tab) {
		free(c);
		return NULL;
	}
	return c;
}

static void group_free(struct group *g)
{
	struct grp_member *m, *mn;
	struct grp_pending *p, *pn;
	struct grp_offset *o, *on;

	for (m = g->members; m; m = mn) {
		mn = m->next;
		member_free(m);
	}
	for (p = g->pending; p; p = pn) {
		pn = p->next;
		free(p->id);
		free(p);
	}
	for (o = g->offsets; o; o = on) {
		on = o->next;
		offset_free(o);
	}
	free(g->otab);
	free(g->mvec);
	free(g->id);
	free(g->protocol_type);
	free(g->protocol);
	free(g);
}

/* Parked waits are forgotten without their callbacks: the caller is going away too. */
void grp_coord_destroy(struct grp_coord *c)
{
	struct group *g, *n;

	if (!c)
		return;
	for (g = c->head; g; g = n) {
		n = g->lnext;
		group_free(g);
	}
	free(c->tab);
	free(c);
}

struct group *grp_find(struct grp_coord *c, const char *id)
{
	id = nz(id);
	for (struct group *g = c->tab[hash_str(id) & (c->tabsize - 1)]; g; g = g->next)
		if (strcmp(g->id, id) == 0)
			return g;
	return NULL;
}

struct group *grp_first(struct grp_coord *c)
{
	return c->head;
}

static void tab_grow(struct grp_coord *c)
{
	size_t n = c->tabsize * 2;
	struct group **t = calloc(n, sizeof(*t));

	if (!t)
		return;		/* longer chains, still correct */
	for (struct group *g = c->head; g; g = g->lnext) {
		size_t b = hash_str(g->id) & (n - 1);
		g->next = t[b];
		t[b] = g;
	}
	free(c->tab);
	c->tab = t;
	c->tabsize = n;
}

static struct group *group_new(struct grp_coord *c, const char *id)
{
	struct group *g = calloc(1, sizeof(*g));
	size_t b;

	if (!g)
		return NULL;
	g->id = dupstr(id);
	if (!g->id) {
		free(g);
		return NULL;
	}
	g->state = GRP_EMPTY;
	g->empty_since_ms = c->cfg.wall_ms();
	if (c->ngroups >= c->tabsize)
		tab_grow(c);
	b = hash_str(g->id) & (c->tabsize - 1);
	g->next = c->tab[b];
	c->tab[b] = g;
	g->lprev = c->tail;
	if (c->tail)
		c->tail->lnext = g;
	else
		c->head = g;
	c->tail = g;
	c->ngroups++;
	return g;
}

static void group_remove(struct grp_coord *c, struct group *g)
{
	for (struct group **pp = &c->tab[hash_str(g->id) & (c->tabsize - 1)]; *pp;
	     pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	if (g->lprev)
		g->lprev->lnext = g->lnext;
	else
		c->head = g->lnext;
	if (g->lnext)
		g->lnext->lprev = g->lprev;
	else
		c->tail = g->lprev;
	c->ngroups--;
	g->state = GRP_DEAD;
	group_free(g);
}

/* Invariant 6: an Empty group with nothing left in it is Dead, and goes. */
static int settle(struct grp_coord *c, struct group *g)
{
	if (g->state == GRP_EMPTY && !g->nmembers && !g->npending && !g->noffsets) {
		group_remove(c, g);
		return 1;
	}
	return 0;
}

/* ---- answering waits ---- */

static void join_error(struct grp_join_wait *w, int16_t err, const char *member_id)
{
	struct grp_join_result r = { .error = err, .generation = -1, .leader = "",
				     .member_id = nz(member_id) };

	w->m = NULL;
	w->fn(w, &r);
}

/* Answer m's parked join, if any, with an error. */
static void join_fail(struct grp_member *m, int16_t err, const char *member_id)
{
	struct grp_join_wait *w = m->join;

	if (w) {
		m->join = NULL;
		join_error(w, err, member_id);
	}
}

/* Answer w with the group's current generation; the leader gets every member. */
static void join_ok(struct group *g, struct grp_member *m, struct grp_join_wait *w, int64_t now)
{
	struct grp_join_result r = { .error = KERR_NONE, .generation = g->generation,
				     .protocol_type = g->protocol_type, .protocol = g->protocol,
				     .leader = g->leader, .member_id = m->id };

	if (is_leader(g, m)) {
		int n = 0;
		for (struct grp_member *x = g->members; x; x = x->next)
			g->mvec[n++] = x;
		r.members = g->mvec;
		r.nmembers = n;
	}
	m->deadline = now + m->session_ms;
	if (m->join == w)
		m->join = NULL;
	w->m = NULL;
	w->fn(w, &r);
}

/* Answer m's parked sync, if any; its session starts again either way. */
static void sync_answer(struct group *g, struct grp_member *m, int16_t err, int64_t now)
{
	struct grp_sync_wait *w = m->sync;
	struct grp_sync_result r = { .error = err };

	m->deadline = now + m->session_ms;
	if (!w)
		return;
	m->sync = NULL;
	w->m = NULL;
	if (err == KERR_NONE) {
		r.protocol_type = g->protocol_type;
		r.protocol = g->protocol;
		r.assignment = m->assignment;
		r.len = m->assignment_len;
	}
	w->fn(w, &r);
}

static void sync_error(struct grp_sync_wait *w, int16_t err)
{
	struct grp_sync_result r = { .error = err };

	w->m = NULL;
	w->fn(w, &r);
}

/* ---- membership changes ---- */

/*
 * Take m out of the group, answering its parked waits with err, and pass
 * the leadership to the next member in order of joining.  No rebalance.
 */
static void remove_member(struct group *g, struct grp_member *m, int16_t err)
{
	struct grp_member **pp;

	join_fail(m, err, "");
	if (m->sync) {
		struct grp_sync_wait *w = m->sync;
		m->sync = NULL;
		sync_error(w, err);
	}
	for (pp = &g->members; *pp != m; pp = &(*pp)->next)
		;
	*pp = m->next;
	g->nmembers--;
	if (is_leader(g, m))
		g->leader = m->next ? m->next->id : g->members ? g->members->id : NULL;
	member_free(m);
}

static void complete_join(struct grp_coord *c, struct group *g, int64_t now);

static void try_complete_join(struct grp_coord *c, struct group *g, int64_t now)
{
	if (g->state != GRP_PREPARING || g->initial_delay || g->npending)
		return;
	for (struct grp_member *m = g->members; m; m = m->next)
		if (!m->joined)
			return;
	complete_join(c, g, now);
}

/*
 * Start a rebalance (Kafka's prepareRebalance).  Parked syncs are answered
 * REBALANCE_IN_PROGRESS, and assignments handed out in CompletingRebalance
 * are void.  From Empty the first JoinGroup waits the initial delay.
 */
static void prepare_rebalance(struct grp_coord *c, struct group *g, int64_t now)
{
	int from_empty = g->state == GRP_EMPTY;
	int32_t t = rebalance_timeout(g);

	if (g->state == GRP_COMPLETING)
		for (struct grp_member *m = g->members; m; m = m->next) {
			free(m->assignment);
			m->assignment = NULL;
			m->assignment_len = 0;
			if (m->synced)
				sync_answer(g, m, KERR_REBALANCE_IN_PROGRESS, now);
		}
	g->state = GRP_PREPARING;
	if (from_empty && c->cfg.initial_delay_ms > 0) {
		g->initial_delay = 1;
		g->new_during_delay = 0;
		g->join_deadline = now + c->cfg.initial_delay_ms;
		g->delay_limit = now + t;
	} else {
		g->initial_delay = 0;
		g->join_deadline = now + t;
	}
	try_complete_join(c, g, now);
}

static void maybe_prepare_rebalance(struct grp_coord *c, struct group *g, int64_t now)
{
	if (g->state == GRP_EMPTY || g->state == GRP_STABLE || g->state == GRP_COMPLETING)
		prepare_rebalance(c, g, now);
}

/* Kafka's onCompleteJoin: end PreparingRebalance with a new generation. */
static void complete_join(struct grp_coord *c, struct group *g, int64_t now)
{
	struct grp_member *m, *next, *lead;
	char *proto = NULL;

	for (m = g->members; m; m = next) {
		next = m->next;
		if (!m->joined && !m->instance_id)
			remove_member(g, m, KERR_UNKNOWN_MEMBER_ID);
	}
	if (g->nmembers) {
		lead = leader_of(g);
		if (!lead->joined) {
			for (m = g->members; m && !m->joined; m = m->next)
				;
			if (!m) {
				/* Only static members that did not rejoin: wait for them
				 * or for their sessions to end. */
				g->join_deadline = now + rebalance_timeout(g);
				return;
			}
			g->leader = m->id;
		}
		proto = dupstr(select_protocol(g));
		if (!proto) {
			g->join_deadline = now + RETRY_MS;
			return;
		}
	}
	g->generation++;
	g->initial_delay = 0;
	g->new_during_delay = 0;
	free(g->protocol);
	g->protocol = proto;
	if (!g->nmembers) {
		g->state = GRP_EMPTY;
		g->empty_since_ms = c->cfg.wall_ms();
		return;
	}
	g->state = GRP_COMPLETING;
	g->sync_deadline = now + rebalance_timeout(g);
	for (m = g->members; m; m = m->next) {
		m->joined = 0;
		m->synced = 0;
		m->deadline = now + m->session_ms;
	}
	for (m = g->members; m; m = m->next)
		if (m->join)
			join_ok(g, m, m->join, now);
}

/* Kafka's removeMemberAndUpdateGroup: a leave or an expired session. */
static void remove_and_update(struct grp_coord *c, struct group *g, struct grp_member *m,
			      int64_t now)
{
	remove_member(g, m, KERR_UNKNOWN_MEMBER_ID);
	if (g->state == GRP_STABLE || g->state == GRP_COMPLETING)
		prepare_rebalance(c, g, now);
	else if (g->state == GRP_PREPARING)
		try_complete_join(c, g, now);
}

static int32_t rebalance_ms_of(const struct grp_join_args *a)
{
	return a->rebalance_ms < 0 ? a->session_ms : a->rebalance_ms;
}

/* A new member (id given for a pending member, else a fresh one), then a rebalance. */
static void add_member_and_rebalance(struct grp_coord *c, struct group *g,
				     const struct grp_join_args *a, const char *id, int64_t now,
				     struct grp_join_wait *w)
{
	struct grp_member *m = calloc(1, sizeof(*m)), **pp;
	char *type = NULL;

	if (!m)
		goto nomem;
	if (mvec_reserve(g, g->nmembers + 1))
		goto nomem;
	if (!g->nmembers && !(type = dupstr(a->protocol_type)))
		goto nomem;
	/* Kafka names static members after their instance, dynamic ones after their client. */
	if (id)
		m->id = dupstr(id);
	else
		m->id = new_member_id(c, g, a->instance_id ? a->instance_id : a->client_id);
	m->instance_id = a->instance_id ? dupstr(a->instance_id) : NULL;
	m->client_id = dupstr(a->client_id);
	m->client_host = dupstr(a->client_host);
	if (!m->id || (a->instance_id && !m->instance_id) || !m->client_id || !m->client_host ||
	    protocols_copy(a->protocols, a->nprotocols, &m->protocols))
		goto nomem;
	m->nprotocols = a->nprotocols > 0 ? a->nprotocols : 0;
	m->session_ms = a->session_ms;
	m->rebalance_ms = rebalance_ms_of(a);
	m->deadline = now + m->session_ms;

	if (g->state == GRP_PREPARING && g->generation == 0)
		g->new_during_delay = 1;
	if (type) {
		free(g->protocol_type);
		g->protocol_type = type;
	}
	for (pp = &g->members; *pp; pp = &(*pp)->next)
		;
	*pp = m;
	g->nmembers++;
	if (!g->leader)
		g->leader = m->id;
	pending_remove(g, m->id);
	m->joined = 1;
	m->join = w;
	w->m = m;
	maybe_prepare_rebalance(c, g, now);
	return;
nomem:
	free(type);
	if (m)
		member_free(m);
	join_error(w, KERR_COORDINATOR_NOT_AVAILABLE, id);
}

/* A known member's JoinGroup that changes something: new protocols, then a rebalance. */
static void update_member_and_rebalance(struct grp_coord *c, struct group *g,
					struct grp_member *m, const struct grp_join_args *a,
					int64_t now, struct grp_join_wait *w)
{
	struct grp_protocol *p;

	if (protocols_copy(a->protocols, a->nprotocols, &p)) {
		join_error(w, KERR_COORDINATOR_NOT_AVAILABLE, m->id);
		return;
	}
	protocols_free(m->protocols, m->nprotocols);
	m->protocols = p;
	m->nprotocols = a->nprotocols > 0 ? a->nprotocols : 0;
	m->session_ms = a->session_ms;
	m->rebalance_ms = rebalance_ms_of(a);
	join_fail(m, KERR_REBALANCE_IN_PROGRESS, m->id);
	m->joined = 1;
	m->join = w;
	w->m = m;
	maybe_prepare_rebalance(c, g, now);
}

/*
 * A static member rejoins with member id "": it takes a new id (the old
 * one's parked waits are fenced) and keeps its assignment (Kafka's
 * updateStaticMemberAndRebalance).
 */
static void static_rejoin(struct grp_coord *c, struct group *g, struct grp_member *s,
			  const struct grp_join_args *a, int64_t now, struct grp_join_wait *w)
{
	char *id = new_member_id(c, g, s->instance_id);
	struct grp_protocol *p = NULL;
	int was_leader = is_leader(g, s);
	const char *sel;

	if (!id || protocols_copy(a->protocols, a->nprotocols, &p)) {
		free(id);
		join_error(w, KERR_COORDINATOR_NOT_AVAILABLE, "");
		return;
	}
	join_fail(s, KERR_FENCED_INSTANCE_ID, s->id);
	if (s->sync) {
		struct grp_sync_wait *old = s->sync;
		s->sync = NULL;
		sync_error(old, KERR_FENCED_INSTANCE_ID);
	}
	free(s->id);
	s->id = id;
	if (was_leader)
		g->leader = id;
	protocols_free(s->protocols, s->nprotocols);
	s->protocols = p;
	s->nprotocols = a->nprotocols > 0 ? a->nprotocols : 0;
	s->session_ms = a->session_ms;
	s->rebalance_ms = rebalance_ms_of(a);
	s->deadline = now + s->session_ms;

	switch (g->state) {
	case GRP_STABLE:
		sel = select_protocol(g);
		if (!was_leader && sel && streq(sel, g->protocol)) {
			join_ok(g, s, w, now);
			return;
		}
		break;
	case GRP_COMPLETING:
	case GRP_PREPARING:
		break;
	default:
		/* Empty and Dead groups have no members. */
		join_error(w, KERR_UNKNOWN_MEMBER_ID, "");
		return;
	}
	s->joined = 1;
	s->join = w;
	w->m = s;
	maybe_prepare_rebalance(c, g, now);
}

/* Kafka's acceptJoiningMember: group.max.size. */
static int accept_joining(struct grp_coord *c, struct group *g, const char *member_id)
{
	struct grp_member *m = grp_member_find(g, member_id);
	int nawait = 0;

	switch (g->state) {
	case GRP_PREPARING:
		if (m && m->joined)
			return 1;
		for (struct grp_member *x = g->members; x; x = x->next)
			nawait += x->joined;
		return nawait < c->cfg.max_size;
	case GRP_COMPLETING:
	case GRP_STABLE:
		return m || g->nmembers < c->cfg.max_size;
	default:
		return 1;
	}
}

/* Static member fencing and membership (Kafka's validateCurrentMember). */
static int16_t check_member(struct group *g, const char *member_id, const char *instance_id)
{
	if (instance_id) {
		struct grp_member *s = static_find(g, instance_id);
		if (!s)
			return KERR_UNKNOWN_MEMBER_ID;
		if (strcmp(s->id, member_id) != 0)
			return KERR_FENCED_INSTANCE_ID;
	}
	return grp_member_find(g, member_id) ? KERR_NONE : KERR_UNKNOWN_MEMBER_ID;
}

static void join_group(struct grp_coord *c, struct group *g, const struct grp_join_args *a,
		       int64_t now, struct grp_join_wait *w)
{
	const char *mid = nz(a->member_id);
	struct grp_member *m;
	int16_t err;

	if (!supports_protocols(g, nz(a->protocol_type), a->protocols, a->nprotocols)) {
		join_error(w, KERR_INCONSISTENT_GROUP_PROTOCOL, mid);
		return;
	}
	if (!accept_joining(c, g, mid)) {
		/* Over the limit (it may have been lowered): shed a member that has not rejoined. */
		if ((m = grp_member_find(g, mid)))
			remove_member(g, m, KERR_GROUP_MAX_SIZE_REACHED);
		pending_remove(g, mid);
		join_error(w, KERR_GROUP_MAX_SIZE_REACHED, "");
		return;
	}
	if (!*mid) {
		if (a->instance_id) {
			struct grp_member *s = static_find(g, a->instance_id);
			if (s)
				static_rejoin(c, g, s, a, now, w);
			else
				add_member_and_rebalance(c, g, a, NULL, now, w);
		} else if (a->require_known_id) {
			struct grp_pending *p = calloc(1, sizeof(*p));
			if (!p || !(p->id = new_member_id(c, g, a->client_id))) {
				free(p);
				join_error(w, KERR_COORDINATOR_NOT_AVAILABLE, "");
				return;
			}
			p->deadline = now + a->session_ms;
			p->next = g->pending;
			g->pending = p;
			g->npending++;
			join_error(w, KERR_MEMBER_ID_REQUIRED, p->id);
		} else {
			add_member_and_rebalance(c, g, a, NULL, now, w);
		}
		return;
	}
	if (!a->instance_id && pending_find(g, mid)) {
		add_member_and_rebalance(c, g, a, mid, now, w);
		return;
	}
	if ((err = check_member(g, mid, a->instance_id))) {
		join_error(w, err, mid);
		return;
	}
	m = grp_member_find(g, mid);
	switch (g->state) {
	case GRP_PREPARING:
		update_member_and_rebalance(c, g, m, a, now, w);
		break;
	case GRP_COMPLETING:
		/* The same metadata: it lost the answer; give it again. */
		if (protocols_match(m, a->protocols, a->nprotocols))
			join_ok(g, m, w, now);
		else
			update_member_and_rebalance(c, g, m, a, now, w);
		break;
	case GRP_STABLE:
		/* The leader's JoinGroup always rebalances: it may have seen new topics. */
		if (is_leader(g, m) || !protocols_match(m, a->protocols, a->nprotocols))
			update_member_and_rebalance(c, g, m, a, now, w);
		else
			join_ok(g, m, w, now);
		break;
	default:
		join_error(w, KERR_UNKNOWN_MEMBER_ID, mid);
		break;
	}
}

void grp_join(struct grp_coord *c, const struct grp_join_args *a, int64_t now,
	      struct grp_join_wait *w)
{
	const char *gid = nz(a->group_id), *mid = nz(a->member_id);
	struct group *g;

	w->m = NULL;
	if (!*gid) {
		join_error(w, KERR_INVALID_GROUP_ID, mid);
		return;
	}
	if (a->session_ms < c->cfg.min_session_ms || a->session_ms > c->cfg.max_session_ms) {
		join_error(w, KERR_INVALID_SESSION_TIMEOUT, mid);
		return;
	}
	g = grp_find(c, gid);
	if (!g) {
		if (*mid) {
			join_error(w, KERR_UNKNOWN_MEMBER_ID, mid);
			return;
		}
		if (!(g = group_new(c, gid))) {
			join_error(w, KERR_COORDINATOR_NOT_AVAILABLE, mid);
			return;
		}
	}
	join_group(c, g, a, now, w);
	try_complete_join(c, g, now);
	settle(c, g);
}

void grp_join_cancel(struct grp_coord *c, struct grp_join_wait *w)
{
	(void)c;
	if (w->m && w->m->join == w)
		w->m->join = NULL;
	w->m = NULL;
}

/* ---- SyncGroup ---- */

/* The leader's assignments: every member's is replaced; 0 or SL_E_NOMEM (none kept). */
static int store_assignments(struct group *g, const struct grp_sync_args *a)
{
	struct grp_member *m;

	for (m = g->members; m; m = m->next) {
		free(m->assignment);
		m->assignment = NULL;
		m->assignment_len = 0;
	}
	for (m = g->members; m; m = m->next)
		for (int i = 0; i < a->nassignments; i++) {
			const struct grp_assignment *x = &a->assignments[i];
			if (!x->member_id || strcmp(x->member_id, m->id) != 0)
				continue;
			if (x->len) {
				m->assignment = malloc(x->len);
				if (!m->assignment)
					goto nomem;
				memcpy(m->assignment, x->data, x->len);
				m->assignment_len = x->len;
			}
			break;
		}
	return 0;
nomem:
	for (m = g->members; m; m = m->next) {
		free(m->assignment);
		m->assignment = NULL;
		m->assignment_len = 0;
	}
	return SL_E_NOMEM;
}

void grp_sync(struct grp_coord *c, const struct grp_sync_args *a, int64_t now,
	      struct grp_sync_wait *w)
{
	const char *mid = nz(a->member_id);
	struct group *g;
	struct grp_member *m;
	int16_t err;

	w->m = NULL;
	if (!*nz(a->group_id)) {
		sync_error(w, KERR_INVALID_GROUP_ID);
		return;
	}
	g = grp_find(c, a->group_id);
	if (!g) {
		sync_error(w, KERR_UNKNOWN_MEMBER_ID);
		return;
	}
	if ((err = check_member(g, mid, a->instance_id))) {
		sync_error(w, err);
		return;
	}
	if (a->generation != g->generation) {
		sync_error(w, KERR_ILLEGAL_GENERATION);
		return;
	}
	if ((a->protocol_type && !streq(a->protocol_type, g->protocol_type)) ||
	    (a->protocol && !streq(a->protocol, g->protocol))) {
		sync_error(w, KERR_INCONSISTENT_GROUP_PROTOCOL);
		return;
	}
	m = grp_member_find(g, mid);
	switch (g->state) {
	case GRP_PREPARING:
		sync_error(w, KERR_REBALANCE_IN_PROGRESS);
		return;
	case GRP_COMPLETING:
		if (m->sync)
			sync_answer(g, m, KERR_REBALANCE_IN_PROGRESS, now);
		m->sync = w;
		w->m = m;
		m->synced = 1;
		if (!is_leader(g, m))
			return;
		if (store_assignments(g, a)) {
			/* As Kafka does when it cannot store the group: everyone rejoins. */
			for (struct grp_member *x = g->members; x; x = x->next)
				if (x->synced)
					sync_answer(g, x, KERR_COORDINATOR_NOT_AVAILABLE, now);
			prepare_rebalance(c, g, now);
			return;
		}
		g->state = GRP_STABLE;
		for (struct grp_member *x = g->members; x; x = x->next)
			if (x->synced)
				sync_answer(g, x, KERR_NONE, now);
		return;
	case GRP_STABLE:
		m->synced = 1;
		m->sync = w;
		w->m = m;
		sync_answer(g, m, KERR_NONE, now);
		return;
	default:
		sync_error(w, KERR_UNKNOWN_MEMBER_ID);
		return;
	}
}

void grp_sync_cancel(struct grp_coord *c, struct grp_sync_wait *w)
{
	(void)c;
	if (w->m && w->m->sync == w)
		w->m->sync = NULL;
	w->m = NULL;
}

/* ---- Heartbeat, LeaveGroup ---- */

int16_t grp_heartbeat(struct grp_coord *c, const char *group_id, const char *member_id,
		      const char *instance_id, int32_t generation, int64_t now)
{
	struct group *g;
	struct grp_member *m;
	int16_t err;

	if (!*nz(group_id))
		return KERR_INVALID_GROUP_ID;
	if (!(g = grp_find(c, group_id)))
		return KERR_UNKNOWN_MEMBER_ID;
	if ((err = check_member(g, nz(member_id), instance_id)))
		return err;
	if (generation != g->generation)
		return KERR_ILLEGAL_GENERATION;
	m = grp_member_find(g, member_id);
	switch (g->state) {
	case GRP_PREPARING:
		m->deadline = now + m->session_ms;
		return KERR_REBALANCE_IN_PROGRESS;
	case GRP_COMPLETING:
	case GRP_STABLE:
		m->deadline = now + m->session_ms;
		return KERR_NONE;
	default:
		return KERR_UNKNOWN_MEMBER_ID;
	}
}

int16_t grp_leave(struct grp_coord *c, const char *group_id, const char *member_id,
		  const char *instance_id, int64_t now)
{
	const char *mid = nz(member_id);
	struct group *g;
	struct grp_member *m;
	int16_t err;

	if (!*nz(group_id))
		return KERR_INVALID_GROUP_ID;
	if (!(g = grp_find(c, group_id)))
		return KERR_UNKNOWN_MEMBER_ID;
	if (!*mid) {
		/* Administrative removal by instance id. */
		if (!instance_id || !(m = static_find(g, instance_id)))
			return KERR_UNKNOWN_MEMBER_ID;
	} else if (pending_find(g, mid)) {
		pending_remove(g, mid);
		try_complete_join(c, g, now);
		return KERR_NONE;
	} else {
		if ((err = check_member(g, mid, instance_id)))
			return err;
		m = grp_member_find(g, mid);
	}
	remove_and_update(c, g, m, now);
	return KERR_NONE;
}

/* ---- committed offsets ---- */

int16_t grp_commit_check(struct grp_coord *c, const char *group_id, const char *member_id,
			 const char *instance_id, int32_t generation, int64_t now)
{
	const char *mid = nz(member_id);
	struct group *g = grp_find(c, group_id);
	int member_commit = generation >= 0 || *mid || instance_id;
	struct grp_member *m;
	int16_t err;

	if (!g) {
		/* Kafka creates the group here and finds no such member in it. */
		if (generation >= 0)
			return KERR_ILLEGAL_GENERATION;
		return member_commit ? KERR_UNKNOWN_MEMBER_ID : KERR_NONE;
	}
	if (!member_commit)
		return g->state == GRP_EMPTY ? KERR_NONE : KERR_UNKNOWN_MEMBER_ID;
	if ((err = check_member(g, mid, instance_id)))
		return err;
	if (generation != g->generation)
		return KERR_ILLEGAL_GENERATION;
	if (g->state == GRP_COMPLETING)
		return KERR_REBALANCE_IN_PROGRESS;
	m = grp_member_find(g, mid);
	m->deadline = now + m->session_ms;
	return KERR_NONE;
}

int grp_offset_put(struct grp_coord *c, const char *group_id, const struct grp_offset *o)
{
	struct group *g = grp_find(c, group_id);
	struct grp_offset *e;
	char *md;
	int created = 0;
	size_t b;

	if (!g) {
		if (!(g = group_new(c, nz(group_id))))
			return SL_E_NOMEM;
		created = 1;
	}
	if (!(md = dupstr(o->metadata)))
		goto nomem;
	e = grp_offset_find(g, nz(o->topic), o->partition);
	if (!e) {
		if ((size_t)g->noffsets >= g->otab_size && otab_grow(g))
			goto nomem_md;
		if (!(e = calloc(1, sizeof(*e))))
			goto nomem_md;
		if (!(e->topic = dupstr(o->topic))) {
			free(e);
			goto nomem_md;
		}
		e->partition = o->partition;
		b = off_hash(e->topic, e->partition) & (g->otab_size - 1);
		e->hnext = g->otab[b];
		g->otab[b] = e;
		if (g->otail)
			g->otail->next = e;
		else
			g->offsets = e;
		g->otail = e;
		g->noffsets++;
	}
	free(e->metadata);
	e->metadata = md;
	e->offset = o->offset;
	e->leader_epoch = o->leader_epoch;
	e->commit_ms = o->commit_ms;
	e->expire_ms = o->expire_ms;
	return 0;
nomem_md:
	free(md);
nomem:
	if (created)
		settle(c, g);
	return SL_E_NOMEM;
}

struct off_key {
	const char *topic;
	int32_t partition;
};

static int match_key(const struct group *g, const struct grp_offset *o, const void *arg)
{
	const struct off_key *k = arg;

	(void)g;
	return strcmp(o->topic, k->topic) == 0 && (k->partition < 0 || o->partition == k->partition);
}

void grp_offset_del(struct grp_coord *c, const char *group_id, const char *topic,
		    int32_t partition)
{
	struct group *g = grp_find(c, group_id);
	struct off_key k = { nz(topic), partition };

	if (!g)
		return;
	offsets_remove_if(g, match_key, &k, NULL, NULL);
	settle(c, g);
}

void grp_offsets_drop_topic(struct grp_coord *c, const char *topic)
{
	struct off_key k = { nz(topic), -1 };
	struct group *g, *n;

	for (g = c->head; g; g = n) {
		n = g->lnext;
		offsets_remove_if(g, match_key, &k, NULL, NULL);
		settle(c, g);
	}
}

struct expiry {
	int64_t now, retention;
};

static int expired(const struct group *g, const struct grp_offset *o, const void *arg)
{
	const struct expiry *x = arg;
	int64_t base;

	if (o->expire_ms >= 0)
		return x->now >= o->expire_ms;
	base = o->commit_ms > g->empty_since_ms ? o->commit_ms : g->empty_since_ms;
	return x->now - base >= x->retention;
}

void grp_expire_offsets(struct grp_coord *c, int64_t wall_now, int64_t retention_ms,
			grp_expire_fn fn, void *arg)
{
	struct expiry x = { wall_now, retention_ms };
	struct group *g, *n;

	for (g = c->head; g; g = n) {
		n = g->lnext;
		if (g->state != GRP_EMPTY)
			continue;
		offsets_remove_if(g, expired, &x, fn, arg);
		settle(c, g);
	}
}

/* ---- DeleteGroups ---- */

int16_t grp_delete(struct grp_coord *c, const char *group_id)
{
	struct group *g = grp_find(c, group_id);

	if (!g)
		return KERR_GROUP_ID_NOT_FOUND;
	if (g->state != GRP_EMPTY)
		return KERR_NON_EMPTY_GROUP;
	group_remove(c, g);
	return KERR_NONE;
}

/* ---- time ---- */

static int has_unsynced(const struct group *g)
{
	for (const struct grp_member *m = g->members; m; m = m->next)
		if (!m->synced)
			return 1;
	return 0;
}

static int64_t group_deadline(const struct group *g)
{
	int64_t d = INT64_MAX;

	for (const struct grp_pending *p = g->pending; p; p = p->next)
		d = min64(d, p->deadline);
	for (const struct grp_member *m = g->members; m; m = m->next)
		if (!awaiting(g, m))
			d = min64(d, m->deadline);
	if (g->state == GRP_PREPARING)
		d = min64(d, g->join_deadline);
	if ((g->state == GRP_COMPLETING || g->state == GRP_STABLE) && has_unsynced(g))
		d = min64(d, g->sync_deadline);
	return d;
}

int64_t grp_next_deadline(struct grp_coord *c)
{
	int64_t d = INT64_MAX;

	for (struct group *g = c->head; g; g = g->lnext)
		d = min64(d, group_deadline(g));
	return d;
}

/* The initial delay or the rebalance timeout ended (Kafka's DelayedJoin expiring). */
static void join_timeout(struct grp_coord *c, struct group *g, int64_t now)
{
	if (g->initial_delay) {
		/* InitialDelayedJoin: members came; another delay, within the rebalance timeout. */
		if (g->new_during_delay && now < g->delay_limit) {
			g->new_during_delay = 0;
			g->join_deadline = min64(now + c->cfg.initial_delay_ms, g->delay_limit);
			return;
		}
		g->initial_delay = 0;
	}
	complete_join(c, g, now);
}

/* Members that did not send SyncGroup in time leave; the rest rebalance. */
static void sync_timeout(struct grp_coord *c, struct group *g, int64_t now)
{
	struct grp_member *m, *next;

	for (m = g->members; m; m = next) {
		next = m->next;
		if (!m->synced)
			remove_member(g, m, KERR_UNKNOWN_MEMBER_ID);
	}
	prepare_rebalance(c, g, now);
}

static void tick_group(struct grp_coord *c, struct group *g, int64_t now)
{
	struct grp_pending **pp;
	struct grp_member *m;

	for (pp = &g->pending; *pp;) {
		if ((*pp)->deadline > now) {
			pp = &(*pp)->next;
			continue;
		}
		struct grp_pending *p = *pp;
		*pp = p->next;
		free(p->id);
		free(p);
		g->npending--;
		try_complete_join(c, g, now);
	}
again:
	for (m = g->members; m; m = m->next)
		if (!awaiting(g, m) && m->deadline <= now) {
			/* The removal can answer and renew the others: look again from the start. */
			remove_and_update(c, g, m, now);
			goto again;
		}
	if (g->state == GRP_PREPARING && g->join_deadline <= now)
		join_timeout(c, g, now);
	if ((g->state == GRP_COMPLETING || g->state == GRP_STABLE) && has_unsynced(g) &&
	    g->sync_deadline <= now)
		sync_timeout(c, g, now);
}

void grp_tick(struct grp_coord *c, int64_t now)
{
	struct group *g, *n;

	for (g = c->head; g; g = n) {
		n = g->lnext;
		for (int pass = 0; pass < MAX_PASSES && group_deadline(g) <= now; pass++)
			tick_group(c, g, now);
	}
}
