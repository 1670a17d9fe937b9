/*
 * wal.h - the write-ahead log: a ring of records on a raw block device or a
 * preallocated file, written with O_DIRECT in 4 KiB-aligned group commits.
 *
 * The WAL knows records, not Kafka: a record is a type byte and an opaque
 * payload.  Layers above choose the types (storage/stream.c writes batches,
 * kafka/ writes topic changes) and replay them on recovery.
 *
 * Positions are logical byte offsets that only grow; the device offset of
 * position p is WAL_RING_START + p % ring_size.  Everything from the trim
 * position to the head is live; appends fail with SL_E_FULL when a record
 * would overwrite live bytes.
 *
 * Group commit: wal_append() copies the record into the open commit buffer
 * and arms a loop task; at the end of the turn everything appended goes out
 * as one aligned write (padded to a 4 KiB boundary), followed by a flush
 * when the device has a volatile write cache.  Only then do the appends'
 * callbacks run, in append order.  Several commits may be in flight (the
 * io_uring path); callbacks still run in log order.
 *
 * Durability contract: when an op's callback runs with err == 0 its record
 * is on stable storage and recovery will return it.  With err != 0 the
 * record may or may not be recovered later; it was never acknowledged.
 * After a write or flush error the WAL refuses further appends
 * (SL_E_CLOSED): it cannot know what reached the device.
 *
 * Ownership: the WAL copies payloads at wal_append(); callers may free them
 * at once.  struct wal_op is the caller's and must stay valid until its
 * callback runs.  Replayed payloads are borrowed for the duration of the
 * callback.
 */
#ifndef SL_WAL_H
#define SL_WAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>
#include "../kernel/err.h"
#include "../kernel/loop.h"

#define WAL_BLOCK 4096
#define WAL_RING_START (2 * WAL_BLOCK)	/* after the two superblock slots */
#define WAL_MAX_RECORD ((size_t)64 << 20)

/*
 * The syscalls the WAL makes, replaceable so tests can inject torn writes,
 * EIO and crashes (SQLite's os_unix.c idea).  Each has the libc signature
 * and returns -1 with errno set on failure.
 */
struct wal_sys {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
	int (*fdatasync)(int fd);
	int (*fstat)(int fd, struct stat *st);
};
extern struct wal_sys wal_sys;
/* Restore the real syscalls. */
void wal_sys_reset(void);

/*
 * The write path of WALs opened from now on (sluice.wal.io):
 *   "auto"    io_uring when the kernel allows it, else pwrite (the
 *             configuration's default)
 *   "uring"   io_uring; wal_open() fails when it is unavailable
 *   "pwrite"  pwrite and fdatasync from the end-of-turn task (what WALs use
 *             until this is called: on it a commit's callbacks run within
 *             the turn that appended, and faults come in through wal_sys)
 * Returns 0, or SL_E_INVALID for another string (the setting is unchanged).
 */
int wal_set_io(const char *mode);

/*
 * Fault injection for the io_uring path, where wal_sys.pwrite and
 * wal_sys.fdatasync are not called for commits (superblocks still use them).
 * Tests only: NULL in production.  Each hook is called as a write or flush
 * of a commit is queued, with what pwrite or fdatasync would get; 0 lets it
 * go to the kernel, a negative errno makes it complete with that error
 * instead, unperformed (queued as a no-op, so completion, ordering and
 * in-flight accounting are those of a real failure).  The commit's later
 * writes and flush are then not queued.  A hook may write to fd itself, to
 * leave a torn write behind.
 */
struct wal_uring_faults {
	int (*write)(int fd, const void *buf, size_t n, off_t off);
	int (*flush)(int fd);
};
extern struct wal_uring_faults wal_uring_faults;

/* Who a device belongs to; a device formatted for another is refused. */
struct wal_ident {
	char cluster[64];	/* NUL-terminated cluster id */
	int32_t node;		/* broker id */
};

/*
 * Initialise path as an empty WAL for id.  A regular file is created (or
 * extended) to capacity bytes and written through; a block device uses its
 * whole size and capacity is ignored.  A device that already holds a WAL is
 * refused (SL_E_EXISTS) unless force is set.  why receives a message on error.
 */
int wal_format(const char *path, uint64_t capacity, const struct wal_ident *id, int force,
	       char *why, size_t whylen);

/*
 * The block device of EBS volume id `volume` ("vol-0abc..."), found by NVMe
 * serial under sysfs_block ("/sys/block"): "/dev/nvme1n1" into path.
 * Returns 0, SL_E_NOTFOUND, or SL_E_INVALID for a malformed id.
 */
int wal_find_volume(const char *sysfs_block, const char *volume, char *path, size_t cap);

struct wal;

/*
 * Open a formatted WAL.  Refused with SL_E_CORRUPT when neither superblock is
 * valid, SL_E_INVALID when it belongs to another cluster or node (why names
 * both).  Does not read records: call wal_recover() next.
 */
struct wal *wal_open(struct loop *l, const char *path, const struct wal_ident *id,
		     int *err, char *why, size_t whylen);
/* Flush what is pending, wait for writes in flight, release everything. */
void wal_close(struct wal *w);

/* pos is the record's position (its first byte); it ends at wal_record_end(pos, n). */
typedef void (*wal_replay_fn)(void *arg, uint8_t type, uint64_t pos, const uint8_t *p, size_t n);

/* The position after a record of n payload bytes at pos: what op->end holds for it. */
uint64_t wal_record_end(uint64_t pos, size_t n);

struct wal_recovery {
	uint64_t records, bytes;	/* valid records replayed, their payload bytes */
	uint64_t from, to;		/* positions scanned: trim .. new head */
	const char *stop;		/* why the scan stopped ("end of log", "CRC mismatch at ...");
					   valid until wal_close() */
	uint64_t ms;			/* time taken */
};

/*
 * Replay every valid record from the trim position up to the first invalid
 * one, in order, then set the head there so appends continue after it.  A
 * torn tail is dropped whole.  Must be called once, before any append.
 */
int wal_recover(struct wal *w, wal_replay_fn fn, void *arg, struct wal_recovery *rec);

typedef void (*wal_done_fn)(void *arg, int err);

struct wal_op {
	wal_done_fn fn;
	void *arg;
	struct wal_op *next;	/* owned by the WAL while pending */
	uint64_t end;		/* position after the record */
};

/*
 * Append one record whose payload is the concatenation of n spans; type 0 is
 * the WAL's own (padding) and refused with SL_E_INVALID.  Returns
 * 0 (op->fn runs once durable), SL_E_FULL when the ring has no room for it
 * now (retry after a trim; see wal_space_wait), SL_E_TOOBIG above
 * WAL_MAX_RECORD, SL_E_CLOSED after a device error.
 */
struct wal_span { const void *p; size_t len; };
int wal_append(struct wal *w, uint8_t type, const struct wal_span *parts, int n, struct wal_op *op);

/*
 * Release everything below pos (pos must not pass the durable head).  pos
 * must be a record boundary, where recovery will start reading: an op's
 * end, wal_record_end() of a replayed record, or the durable head.
 */
int wal_trim(struct wal *w, uint64_t pos);

/* Run fn(arg) once, the next time wal_trim() frees space. */
struct wal_space_waiter {
	loop_fn fn;
	void *arg;
	struct wal_space_waiter *next;
	int armed;
};
static inline void wal_space_waiter_init(struct wal_space_waiter *sw, loop_fn fn, void *arg)
{
	sw->fn = fn;
	sw->arg = arg;
	sw->next = NULL;
	sw->armed = 0;
}
void wal_space_wait(struct wal *w, struct wal_space_waiter *sw);
void wal_space_cancel(struct wal *w, struct wal_space_waiter *sw);

struct wal_stats {
	uint64_t capacity;		/* ring bytes */
	uint64_t trim, durable, head;	/* positions */
	uint64_t commits, bytes_written;
	int volatile_cache;		/* flushes after writes */
	int uring;			/* io_uring in use */
	uint32_t inflight;		/* commits sealed, callbacks not yet run */
};
void wal_stats(const struct wal *w, struct wal_stats *st);

#endif
