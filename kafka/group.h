/*
 * group.h - the consumer group coordinator: Kafka's classic rebalance
 * protocol and the committed-offsets table, as an engine without I/O.
 *
 * The engine knows groups, members, generations and offsets.  It never
 * touches a socket, the WAL or the loop: handlers (kafka/h_group.c,
 * kafka/h_commit.c) decode requests into the argument structs below and
 * encode the results; the glue arms one loop timer at grp_next_deadline()
 * and calls grp_tick() when it fires.  Every call takes the monotonic time
 * `now` in milliseconds, so the unit tests drive all timeouts with a fake
 * clock.  Wall-clock times (when a group became empty, for offset expiry)
 * come from cfg.wall_ms.
 *
 * Group states, as in Kafka's GroupCoordinator (3.x):
 *
 *            first join                 all joined / timeout
 *   Empty ──────────────▶ PreparingRebalance ─────────────▶ CompletingRebalance
 *     ▲                      ▲      │ no members left              │ leader's SyncGroup
 *     │                      │      └──────────▶ Empty             ▼
 *     │                      └──── join/leave/expiry ────────── Stable
 *     └── last member leaves or expires (a rebalance with no members ends Empty)
 *   Dead: deleted (DeleteGroups; or Empty with no members and no offsets, at
 *   the next grp_expire_offsets pass); removed from the table at once.
 *
 * Callbacks: grp_join() and grp_sync() may answer at once (the callback runs
 * before they return) or later, from another call or from grp_tick().  Each
 * wait's callback runs exactly once unless it is cancelled first.  Pointers in
 * a result are valid only during the callback: copy what you keep.  A
 * callback may cancel other waits (grp_join_cancel, grp_sync_cancel) but must
 * make no other call into the coordinator: it runs in the middle of a state
 * change.
 *
 * Ownership: the coordinator owns groups, members and offsets, and copies
 * every string and byte range it keeps.  A struct group pointer is valid
 * until the next call that can delete a group (grp_delete, grp_tick,
 * grp_expire_offsets, grp_offset_del, grp_offsets_drop_topic, grp_leave) or
 * grp_coord_destroy; a struct grp_member pointer until the next call that
 * can remove members or change their ids (any call taking `now`).
 *
 * Allocation failures never crash and never leave half a change: a JoinGroup
 * or SyncGroup that cannot get memory is answered COORDINATOR_NOT_AVAILABLE,
 * which clients retry after finding the coordinator again.
 */
#ifndef SL_KAFKA_GROUP_H
#define SL_KAFKA_GROUP_H

#include <stddef.h>
#include <stdint.h>

enum grp_state { GRP_EMPTY, GRP_PREPARING, GRP_COMPLETING, GRP_STABLE, GRP_DEAD };

/* Kafka's names for DescribeGroups and ListGroups ("PreparingRebalance", ...). */
const char *grp_state_name(enum grp_state s);
/* The state named s (case-insensitive, as ListGroups v4 filters), or -1. */
int grp_state_parse(const char *s);

struct grp_config {
	int32_t min_session_ms;		/* group.min.session.timeout.ms (6000) */
	int32_t max_session_ms;		/* group.max.session.timeout.ms (1800000) */
	int32_t initial_delay_ms;	/* group.initial.rebalance.delay.ms (3000) */
	int32_t max_size;		/* group.max.size (INT32_MAX) */
	int64_t (*wall_ms)(void);	/* wall clock, replaceable in tests */
};

struct grp_protocol {
	char *name;
	uint8_t *meta;
	size_t len;
};

struct grp_member {
	char *id;
	char *instance_id;		/* group.instance.id; NULL for dynamic members */
	char *client_id, *client_host;
	int32_t session_ms, rebalance_ms;
	struct grp_protocol *protocols;	/* in the member's order of preference */
	int nprotocols;
	uint8_t *assignment;		/* from the leader's SyncGroup; NULL until then */
	size_t assignment_len;
	int64_t deadline;		/* session expiry, monotonic ms */
	struct grp_join_wait *join;	/* parked JoinGroup, or NULL */
	struct grp_sync_wait *sync;	/* parked SyncGroup, or NULL */
	int joined;			/* rejoined in the current rebalance */
	int synced;			/* sent SyncGroup in this generation */
	struct grp_member *next;	/* group's list, in order of joining */
};

struct grp_offset {
	char *topic;
	int32_t partition;
	int64_t offset;
	int32_t leader_epoch;		/* -1 when not given */
	char *metadata;			/* never NULL ("" for a null string) */
	int64_t commit_ms;		/* wall clock of the commit */
	int64_t expire_ms;		/* explicit expiry (OffsetCommit v1-4), or -1 */
	struct grp_offset *next;	/* group's list, in order of first commit */
	struct grp_offset *hnext;	/* hash chain */
};

struct group {
	char *id;
	enum grp_state state;
	int32_t generation;		/* 0 until the first rebalance completes */
	char *protocol_type;		/* NULL until a member joins; kept while Empty */
	char *protocol;			/* chosen protocol name; NULL while Empty, set in
					   Completing/Stable, kept through a rebalance */
	char *leader;			/* the leader member's own id string (not a copy);
					   NULL iff there are no members */
	struct grp_member *members;	/* in order of joining */
	int nmembers;
	int npending;			/* member ids handed out with MEMBER_ID_REQUIRED */
	int64_t empty_since_ms;		/* wall clock when it last became Empty */
	struct grp_offset *offsets;	/* committed offsets, in order of first commit */
	int noffsets;
	/* the rest is the engine's */
	struct grp_pending *pending;
	struct grp_offset **otab;
	size_t otab_size;
	int64_t join_deadline;		/* PreparingRebalance ends by then */
	int64_t sync_deadline;		/* members must sync by then (CompletingRebalance,
					   and Stable until every member has) */
	int initial_delay;		/* still in group.initial.rebalance.delay.ms */
	int new_during_delay;
	int64_t delay_limit;		/* initial delays are not extended past this */
	const struct grp_member **mvec;	/* room for every member: the leader's JoinGroup answer */
	int mcap;
	struct grp_offset *otail;	/* last of offsets */
	struct group *next;		/* coordinator's hash chain */
	struct group *lnext;		/* coordinator's list, in order of creation */
	struct group *lprev;
};

struct grp_coord;

/* NULL on allocation failure.  cfg is copied. */
struct grp_coord *grp_coord_new(const struct grp_config *cfg);
void grp_coord_destroy(struct grp_coord *c);

struct group *grp_find(struct grp_coord *c, const char *id);
/* Groups in order of creation: for (g = grp_first(c); g; g = g->lnext). */
struct group *grp_first(struct grp_coord *c);
struct grp_member *grp_member_find(struct group *g, const char *member_id);

/* ---- JoinGroup ---- */

struct grp_join_args {
	const char *group_id;
	const char *member_id;		/* "" for a new member */
	const char *instance_id;	/* NULL for a dynamic member */
	const char *protocol_type;
	const struct grp_protocol *protocols;
	int nprotocols;
	int32_t session_ms;
	int32_t rebalance_ms;		/* v0: the session timeout */
	int require_known_id;		/* JoinGroup v4+: answer MEMBER_ID_REQUIRED first */
	const char *client_id, *client_host;
};

struct grp_join_result {
	int16_t error;			/* a KERR_* code */
	int32_t generation;		/* -1 on error */
	const char *protocol_type;	/* NULL on error */
	const char *protocol;		/* NULL on error */
	const char *leader;		/* "" on error */
	const char *member_id;		/* the member's id, also with MEMBER_ID_REQUIRED */
	const struct grp_member *const *members;	/* leader only, else NULL */
	int nmembers;			/* each with metadata for `protocol` via grp_member_meta */
};

struct grp_join_wait;
typedef void (*grp_join_fn)(struct grp_join_wait *w, const struct grp_join_result *r);
struct grp_join_wait {
	grp_join_fn fn;
	void *arg;
	struct grp_member *m;		/* engine's: the parked member */
};

/*
 * Join or rejoin.  The checks, in Kafka's order: group id "" ->
 * INVALID_GROUP_ID; session timeout outside [min, max] -> INVALID_SESSION_TIMEOUT;
 * unknown group with a member id -> UNKNOWN_MEMBER_ID; a protocol type or
 * protocol set the group's members cannot share -> INCONSISTENT_GROUP_PROTOCOL;
 * a full group -> GROUP_MAX_SIZE_REACHED; a static instance known under
 * another member id -> FENCED_INSTANCE_ID; an unknown member id ->
 * UNKNOWN_MEMBER_ID; a new dynamic member with require_known_id ->
 * MEMBER_ID_REQUIRED with a fresh member id (pending until it rejoins or its
 * session timeout passes).  Otherwise the member is added or updated and the
 * wait parks until the rebalance completes, or is answered at once when the
 * member rejoins unchanged (Stable, not the leader; or CompletingRebalance).
 * A static member rejoining with "" takes a new member id and the old id's
 * assignment; a parked wait of the old id gets FENCED_INSTANCE_ID.  In
 * Stable, when it is not the leader and its protocols would not change the
 * group's chosen protocol, it is answered at once with the current
 * generation (Kafka's test; a restarted consumer's metadata differs in its
 * owned partitions); otherwise a rebalance starts.  rebalance_ms < 0 means
 * the session timeout.  A second JoinGroup of a member whose first is still
 * parked answers the first with REBALANCE_IN_PROGRESS.
 */
void grp_join(struct grp_coord *c, const struct grp_join_args *a, int64_t now,
	      struct grp_join_wait *w);
/* The connection went away: w's callback will not run.  The member stays. */
void grp_join_cancel(struct grp_coord *c, struct grp_join_wait *w);
/* m's metadata for protocol name, or NULL/0. */
const uint8_t *grp_member_meta(const struct grp_member *m, const char *name, size_t *len);

/* ---- SyncGroup ---- */

struct grp_assignment {
	const char *member_id;
	const uint8_t *data;
	size_t len;
};

struct grp_sync_args {
	const char *group_id;
	const char *member_id;
	const char *instance_id;	/* NULL when not given */
	int32_t generation;
	const char *protocol_type;	/* NULL when not given (v0-4) */
	const char *protocol;		/* NULL when not given (v0-4) */
	const struct grp_assignment *assignments;	/* the leader's; others send none */
	int nassignments;
};

struct grp_sync_result {
	int16_t error;
	const char *protocol_type;	/* NULL on error */
	const char *protocol;		/* NULL on error */
	const uint8_t *assignment;	/* NULL/0 for none */
	size_t len;
};

struct grp_sync_wait;
typedef void (*grp_sync_fn)(struct grp_sync_wait *w, const struct grp_sync_result *r);
struct grp_sync_wait {
	grp_sync_fn fn;
	void *arg;
	struct grp_member *m;		/* engine's */
};

/*
 * Checks: group id "" -> INVALID_GROUP_ID; unknown group or member ->
 * UNKNOWN_MEMBER_ID; FENCED_INSTANCE_ID;
 * ILLEGAL_GENERATION; protocol type or name differing from the group's ->
 * INCONSISTENT_GROUP_PROTOCOL; Empty -> UNKNOWN_MEMBER_ID; PreparingRebalance
 * -> REBALANCE_IN_PROGRESS.  In CompletingRebalance the wait parks until the
 * leader's SyncGroup arrives (which makes the group Stable and answers every
 * parked member; members the leader left out get an empty assignment).  In
 * Stable the member's assignment is answered at once.  A rebalance that starts
 * first answers parked syncs with REBALANCE_IN_PROGRESS.
 */
void grp_sync(struct grp_coord *c, const struct grp_sync_args *a, int64_t now,
	      struct grp_sync_wait *w);
void grp_sync_cancel(struct grp_coord *c, struct grp_sync_wait *w);

/* ---- Heartbeat, LeaveGroup ---- */

/*
 * Returns NONE, or: group id "" -> INVALID_GROUP_ID; unknown group or
 * member -> UNKNOWN_MEMBER_ID; FENCED_INSTANCE_ID; ILLEGAL_GENERATION;
 * Empty -> UNKNOWN_MEMBER_ID;
 * PreparingRebalance -> REBALANCE_IN_PROGRESS (the session is still renewed).
 */
int16_t grp_heartbeat(struct grp_coord *c, const char *group_id, const char *member_id,
		      const char *instance_id, int32_t generation, int64_t now);

/*
 * One leaving member: by member id, or by instance id (member_id "" allowed
 * then; a member id that does not match the instance -> FENCED_INSTANCE_ID).
 * Group id "" -> INVALID_GROUP_ID; unknown group or member ->
 * UNKNOWN_MEMBER_ID.  A parked join or sync of the member gets
 * UNKNOWN_MEMBER_ID.  Stable or CompletingRebalance groups start a
 * rebalance; a PreparingRebalance may complete.  Pending member ids can leave.
 */
int16_t grp_leave(struct grp_coord *c, const char *group_id, const char *member_id,
		  const char *instance_id, int64_t now);

/* ---- committed offsets ---- */

/*
 * May this commit go ahead?  Kafka's validateOffsetCommit: generation >= 0,
 * or a member id or instance id given, means a member's commit: FENCED_INSTANCE_ID,
 * UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, and REBALANCE_IN_PROGRESS while
 * CompletingRebalance; a member's commit renews its session.  Otherwise
 * (generation -1, no ids) a standalone commit, allowed only while the group
 * is Empty or does not exist (else UNKNOWN_MEMBER_ID).  An unknown group with
 * generation >= 0 -> ILLEGAL_GENERATION.  Group id "" is allowed, as in Kafka.
 * Nothing is changed but the session; the caller journals the commit and then
 * calls grp_offset_put for each partition.
 */
int16_t grp_commit_check(struct grp_coord *c, const char *group_id, const char *member_id,
			 const char *instance_id, int32_t generation, int64_t now);

/*
 * Store one committed offset (a copy of o's fields), creating the group
 * Empty if it does not exist.  0 or SL_E_NOMEM.
 */
int grp_offset_put(struct grp_coord *c, const char *group_id, const struct grp_offset *o);
struct grp_offset *grp_offset_find(struct group *g, const char *topic, int32_t partition);
/*
 * Remove one offset; partition -1 removes every partition of topic.  A group
 * left Empty with no offsets is deleted (Dead), as Kafka does.
 */
void grp_offset_del(struct grp_coord *c, const char *group_id, const char *topic,
		    int32_t partition);
/* A topic was deleted: forget its offsets in every group (groups left Empty
 * with no offsets are deleted). */
void grp_offsets_drop_topic(struct grp_coord *c, const char *topic);

/*
 * Offsets expire (Kafka's offsets.retention.minutes) only in Empty groups:
 * once `retention_ms` has passed since the later of the commit and the time
 * the group became Empty, or at an explicit expire_ms.  fn runs for each
 * expired offset before it is freed (the caller journals a tombstone); an
 * Empty group left with no offsets is deleted.  wall_now is wall-clock ms.
 */
typedef void (*grp_expire_fn)(void *arg, const struct group *g, const struct grp_offset *o);
void grp_expire_offsets(struct grp_coord *c, int64_t wall_now, int64_t retention_ms,
			grp_expire_fn fn, void *arg);

/* ---- DeleteGroups ---- */

/*
 * NONE and the group is gone with its offsets and pending member ids;
 * GROUP_ID_NOT_FOUND; or NON_EMPTY_GROUP unless it is Empty (Kafka's test:
 * a rebalance whose members all left is still not Empty).
 */
int16_t grp_delete(struct grp_coord *c, const char *group_id);

/* ---- time ---- */

/* The earliest deadline of any group or member, or INT64_MAX. */
int64_t grp_next_deadline(struct grp_coord *c);
/*
 * Act on every deadline <= now: expire sessions and pending member ids, end
 * initial delays (in a group's first rebalance, generation 0, each new member
 * earns one more delay, within the rebalance timeout: Kafka's
 * InitialDelayedJoin) and rebalance timeouts (dynamic members that did not rejoin
 * are removed; static ones stay until their session expires, as in Kafka),
 * and remove members that did not sync in time.  Parked members (in JoinGroup
 * during a rebalance, or in SyncGroup) do not expire.
 */
void grp_tick(struct grp_coord *c, int64_t now);

#endif
