/*
 * wal.c - the write-ahead log (see wal.h; the bytes on the device are
 * described in docs/FORMAT.md, "The WAL").
 *
 * Owns: the device's descriptor, its two superblock slots, the commit
 * buffers and the positions below, and on the io_uring path the ring and its
 * eventfd.  It borrows the loop (two deferred tasks, and the eventfd's
 * watch) and the callers' wal_op and wal_space_waiter structures.
 *
 * The device:
 *
 *     0          4096       8192                                 8192 + R
 *     +----------+----------+------------------------------------+
 *     | super    | super    | ring: position p is at             |
 *     | slot 0   | slot 1   | device offset 8192 + p % R         |
 *     +----------+----------+------------------------------------+
 *
 * The ring, in positions (logical byte offsets that only grow; R = ring size):
 *
 *        trim          durable        sealed            head
 *          |  acknowledged  |  written, not  |  open commit  |
 *          |                |  yet completed |  (this turn)  |
 *   .......[################|================|++++++++++++++.......
 *          <------- never more than R, padding included ------->
 *
 * A commit is what one turn appended: records packed 8-byte aligned, closed
 * by a terminator record (type 0) that pads it to the next 4 KiB boundary.
 * It is sealed at the end of the turn (or earlier when it reaches
 * COMMIT_TARGET bytes), written with one pwrite (two when it wraps past the
 * ring's physical end), flushed when the device needs it, and only then are
 * its ops' callbacks run.
 *
 * Invariants:
 *   1. trim <= durable <= sealed <= head, and the end the open commit would
 *      have once padded, minus trim, is at most R: no write ever lands on a
 *      live byte.
 *   2. Every commit starts and ends on a 4 KiB boundary, so a write never
 *      touches a block holding bytes of an earlier commit.  A block holding
 *      acknowledged records is never rewritten while it is live.
 *   3. The records of a commit tile it exactly, terminator last.  Recovery
 *      replays a commit's records only after it has verified everything up
 *      to and including the terminator, so a torn commit is dropped whole,
 *      whatever order its blocks reached the device in.
 *   4. Callbacks run in log order: commits complete only from the head of
 *      the queue, and once one has failed every later one fails with the same
 *      error (the log has a hole; what follows it would not be recovered).
 *   5. The in-memory trim moves only after the superblock naming it has been
 *      written and flushed, so space is reused only once recovery can no
 *      longer need the bytes in it.
 *   6. Every record carries the epoch of the open that wrote it: the
 *      generation of the superblock wal_recover() writes, larger than every
 *      epoch already on the device.  Recovery requires epochs never to
 *      decrease and to be equal within a commit, so whole commits left behind
 *      a point where an earlier recovery stopped (a torn tail, a corrupt
 *      block) can never be replayed after records written later.  Each
 *      record's CRC is seeded with the WAL id, chosen at random by
 *      wal_format(), so nothing from a previous format is accepted either.
 *   7. After a failed write, flush or superblock write the WAL is read-only:
 *      the device's state is unknown, so nothing more is acknowledged.
 *
 * Two I/O paths share everything above; sluice.wal.io (wal_set_io) picks
 * one at wal_open():
 *
 *   pwrite    the end-of-turn task writes and flushes each sealed commit
 *             synchronously (commit_submit), through the wal_sys table.
 *   io_uring  the end-of-turn task queues each sealed commit as one linked
 *             chain and returns at once; up to URING_DEPTH commits are in
 *             flight while the loop goes on reading the network.  The
 *             kernel signals completions on an eventfd the loop watches.
 *
 * A commit's chain on the io_uring path:
 *
 *     WRITE [start, ring end) --link--> WRITE [0, rest)  --link--> FSYNC (DATASYNC)
 *     (the second write only when the commit wraps; the fsync only when the
 *      device has a volatile cache)
 *
 * A link runs the next request only after the previous one succeeded in
 * full: a failed or short write cancels the fsync, so a flush never vouches
 * for a write that did not happen.  Each request's completion carries the
 * commit and the request's index in user_data; the commit is finished once
 * all of its requests have completed, with the first failure in chain order
 * (a cancelled fsync after a failed write reports the write's error).
 *
 * Commits in flight are independent chains, so their completions can arrive
 * in any order; commits_reap() completes them only from the head of the
 * queue (invariant 4), so callbacks still run in log order, and a commit
 * that finished early waits for the ones before it.  A failure fails the
 * commits after it with the same error even when their own writes
 * succeeded: those bytes lie beyond a hole in the log and are never
 * acknowledged (recovery stops at the hole; invariant 6 keeps them out
 * afterwards).  Commits sealed while URING_DEPTH are in flight wait in the
 * queue, state C_SEALED, and go out as completions make room.
 *
 * Superblock writes (trims, recovery) stay synchronous on both paths: they
 * are rare, and a trim must be durable before wal_trim() returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <linux/io_uring.h>
#include "wal.h"
#include "../kernel/buf.h"
#include "../kernel/crc32c.h"
#include "../kernel/log.h"

#ifndef BLKGETSIZE64
#define BLKGETSIZE64 _IOR(0x12, 114, size_t)
#endif

#define SB_MAGIC "SLUICWAL"
#define SB_VERSION 1
#define SB_CRC_AT 128			/* the CRC covers bytes [0, 128) */
#define REC_MAGIC 0x534c5752u		/* "SLWR" */
#define HDR 32				/* record header bytes */
#define HDR_CRC_AT 12
#define RING_MIN ((uint64_t)1 << 20)
/*
 * Positions and generations stay below this (centuries of writing, or of
 * trims); larger ones are corrupt, and counting on from them cannot wrap.
 */
#define POS_MAX ((uint64_t)1 << 62)
/* A commit is sealed early once it holds this much (unless one record). */
#define COMMIT_TARGET ((size_t)8 << 20)
/* No commit is longer: one largest record, its header and a terminator. */
#define COMMIT_LIMIT (WAL_MAX_RECORD + 2 * WAL_BLOCK)
#define SCAN_FIRST ((size_t)16 << 10)	/* recovery's first read; they grow to: */
#define SCAN_CHUNK ((size_t)1 << 20)
/* How long open waits for the lock of a process whose writes are draining. */
#define LOCK_WAIT_MS 3000
#define LOCK_POLL_MS 10
/* A recycled commit keeps its buffer up to this size. */
#define SPARE_MAX ((size_t)16 << 20)
#define SPARE_COUNT 6
/*
 * io_uring: commits in flight at once, and the ring's size.  A commit takes
 * at most 3 requests (two writes and a flush), so the submission ring never
 * fills, and the completion ring (twice as large) can never overflow.
 */
#define URING_DEPTH 4
#define URING_REQS 3
#define URING_ENTRIES 16

enum { IO_AUTO, IO_URING, IO_PWRITE };

enum { W_OPENED, W_READY, W_CLOSING };
enum { C_OPEN, C_SEALED, C_SUBMITTED, C_DONE };

struct commit {
	struct commit *next;		/* the queue, in log order */
	uint8_t *buf;			/* WAL_BLOCK aligned, cap bytes */
	size_t cap, used;
	uint64_t start, end;		/* positions; end is set when sealed */
	struct wal_op *ops, *ops_tail;	/* in append order */
	int state;
	int err;
	/* io_uring: the chain's requests, in order, and how each ended */
	int nreq, ndone;
	size_t rlen[URING_REQS];	/* bytes a write must report; 0 marks the flush */
	uint64_t rpos[URING_REQS];	/* log position of each write */
	int rerr[URING_REQS];		/* 0, or the request's error */
};

struct uring;

struct wal {
	struct loop *l;
	int fd;
	char *path;
	uint64_t ring;			/* R: ring bytes, a multiple of WAL_BLOCK */
	uint64_t wal_id;
	uint32_t crc_seed;		/* crc32c of the WAL id: starts every record CRC */
	struct wal_ident id;
	uint64_t gen;			/* generation of the newest superblock */
	uint64_t epoch;			/* stamped on the records of this open */
	uint64_t trim, durable, sealed;	/* positions, invariant 1 */
	int state;
	int failed;			/* first device error; invariant 7 */
	int flush;			/* fdatasync after writes */
	int in_cb;			/* running callbacks: wal_close is not allowed */
	struct commit *open;		/* starts at sealed; NULL if none */
	struct commit *q_head, *q_tail;	/* sealed commits not yet completed */
	struct commit *spare;		/* recycled commits, buffers kept, linked by next */
	int nspare;
	struct loop_task turn;		/* seals and writes at the end of the turn */
	struct loop_task space;		/* runs space waiters after a trim */
	struct wal_space_waiter *waiters;	/* FIFO */
	struct wal_space_waiter *firing;	/* being run by the space task */
	uint8_t *sbuf;			/* WAL_BLOCK aligned: superblock writes */
	struct uring *ur;		/* the io_uring path; NULL for pwrite */
	uint64_t commits, bytes_written;
	char stop[192];			/* wal_recovery.stop points here */
};

/* The superblock's fields, decoded (docs/FORMAT.md has the layout). */
struct sb {
	uint32_t version, block;
	uint64_t ring_start, ring, wal_id;
	int32_t node;
	char cluster[64];
	uint64_t trim, gen;
};

/* ---- the syscall table ---- */

static int sys_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

struct wal_sys wal_sys = { sys_open, close, pread, pwrite, fdatasync, fstat };

void wal_sys_reset(void)
{
	wal_sys.open = sys_open;
	wal_sys.close = close;
	wal_sys.pread = pread;
	wal_sys.pwrite = pwrite;
	wal_sys.fdatasync = fdatasync;
	wal_sys.fstat = fstat;
}

static void wal_turn(struct loop *l, void *arg);
static void run_space_waiters(struct loop *l, void *arg);
static void commits_submit(struct wal *w);
static int uring_open(struct wal *w, char *why, size_t whylen);
static void uring_completions(struct loop *l, int fd, unsigned events, void *arg);

/*
 * Until wal_set_io() says otherwise, the pwrite path: callers that inject
 * faults through wal_sys, or expect a commit's callbacks within its turn,
 * keep what they rely on.  The broker passes sluice.wal.io (default auto).
 */
static int io_mode = IO_PWRITE;

int wal_set_io(const char *mode)
{
	if (strcmp(mode, "auto") == 0)
		io_mode = IO_AUTO;
	else if (strcmp(mode, "uring") == 0)
		io_mode = IO_URING;
	else if (strcmp(mode, "pwrite") == 0)
		io_mode = IO_PWRITE;
	else
		return SL_E_INVALID;
	return 0;
}

struct wal_uring_faults wal_uring_faults;

/* ---- small helpers ---- */

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static uint64_t align_down(uint64_t x, uint64_t a)
{
	return x / a * a;
}

static uint64_t rec_size(size_t len)
{
	return align_up(HDR + (uint64_t)len, 8);
}

uint64_t wal_record_end(uint64_t pos, size_t n)
{
	return pos + rec_size(n);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void say(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static void *block_alloc(size_t n)
{
	return aligned_alloc(WAL_BLOCK, align_up(n ? n : 1, WAL_BLOCK));
}

/* Bytes of the device: st_size for a file, the ioctl for a block device. */
static int device_size(int fd, const struct stat *st, uint64_t *size)
{
	if (S_ISREG(st->st_mode)) {
		*size = (uint64_t)st->st_size;
		return 0;
	}
	if (S_ISBLK(st->st_mode)) {
		uint64_t n = 0;

		if (ioctl(fd, BLKGETSIZE64, &n) == -1)
			return -errno;
		*size = n;
		return 0;
	}
	return SL_E_INVALID;
}

/* A small sysfs attribute into val (NUL-terminated); 0 or -1. */
static int read_sysfs(const char *path, char *val, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	if (fd == -1)
		return -1;
	got = read(fd, val, n - 1);
	close(fd);
	if (got <= 0)
		return -1;
	val[got] = '\0';
	return 0;
}

/*
 * Whether writes need a flush to be durable.  A regular file always does:
 * O_DIRECT writes into preallocated or sparse extents change the file
 * system's metadata, which only fdatasync makes durable, whatever the disk's
 * cache.  A block device needs one when its write cache is volatile, as
 * sysfs says; a partition's queue is its parent's.  Unknown means volatile.
 */
static int needs_flush(const struct stat *st)
{
	char path[96], val[32];
	unsigned maj, min;

	if (!S_ISBLK(st->st_mode))
		return 1;
	maj = major(st->st_rdev);
	min = minor(st->st_rdev);
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/write_cache", maj, min);
	if (read_sysfs(path, val, sizeof(val)) != 0) {
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../queue/write_cache", maj, min);
		if (read_sysfs(path, val, sizeof(val)) != 0)
			return 1;
	}
	return strncmp(val, "write through", 13) != 0;
}

/* ---- superblocks ---- */

static void sb_encode(uint8_t *p, const struct sb *s)
{
	memset(p, 0, WAL_BLOCK);
	memcpy(p, SB_MAGIC, 8);
	sl_store_be32(p + 8, s->version);
	sl_store_be32(p + 12, s->block);
	sl_store_be64(p + 16, s->ring_start);
	sl_store_be64(p + 24, s->ring);
	sl_store_be64(p + 32, s->wal_id);
	sl_store_be32(p + 40, (uint32_t)s->node);
	/* 44: four reserved bytes, zero */
	memcpy(p + 48, s->cluster, 64);
	sl_store_be64(p + 112, s->trim);
	sl_store_be64(p + 120, s->gen);
	sl_store_be32(p + SB_CRC_AT, crc32c(0, p, SB_CRC_AT));
}

/* 0 if slot holds a superblock whose magic, CRC and slot are right. */
static int sb_decode(const uint8_t *p, unsigned slot, struct sb *s)
{
	struct sl_rd r;
	const uint8_t *magic, *cluster;
	uint32_t node, reserved, crc;

	rd_init(&r, p, WAL_BLOCK);
	if (rd_bytes(&r, 8, &magic) || memcmp(magic, SB_MAGIC, 8) != 0 ||
	    rd_u32(&r, &s->version) || rd_u32(&r, &s->block) ||
	    rd_u64(&r, &s->ring_start) || rd_u64(&r, &s->ring) ||
	    rd_u64(&r, &s->wal_id) || rd_u32(&r, &node) || rd_u32(&r, &reserved) ||
	    rd_bytes(&r, 64, &cluster) || rd_u64(&r, &s->trim) || rd_u64(&r, &s->gen) ||
	    rd_u32(&r, &crc))
		return -1;
	if (crc != crc32c(0, p, SB_CRC_AT))
		return -1;
	/* Generation g is only ever written to slot g % 2. */
	if (s->gen % 2 != slot || !memchr(cluster, 0, 64))
		return -1;
	s->node = (int32_t)node;
	memcpy(s->cluster, cluster, 64);
	return 0;
}

/*
 * Pick the valid superblock with the higher generation from the two slots
 * in p (2 * WAL_BLOCK bytes).  Returns the slot, or -1 if neither is valid.
 */
static int sb_pick(const uint8_t *p, struct sb *s)
{
	struct sb a, b;
	int va = sb_decode(p, 0, &a) == 0;
	int vb = sb_decode(p + WAL_BLOCK, 1, &b) == 0;

	if (va && (!vb || a.gen > b.gen)) {
		*s = a;
		return 0;
	}
	if (vb) {
		*s = b;
		return 1;
	}
	return -1;
}

static int all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return 0;
	return 1;
}

static int dev_flush(struct wal *w, const char *what, uint64_t pos)
{
	if (!w->flush)
		return 0;
	if (wal_sys.fdatasync(w->fd) == -1) {
		int rc = -errno;

		log_error("wal", "%s: flush after %s at position %llu failed: %s", w->path, what,
			  (unsigned long long)pos, sl_strerror(rc));
		return rc;
	}
	return 0;
}

/* Write and flush generation gen naming trim; w->gen follows on success. */
static int sb_write(struct wal *w, uint64_t trim, uint64_t gen)
{
	struct sb s;
	ssize_t got;
	int rc;

	memset(&s, 0, sizeof(s));
	s.version = SB_VERSION;
	s.block = WAL_BLOCK;
	s.ring_start = WAL_RING_START;
	s.ring = w->ring;
	s.wal_id = w->wal_id;
	s.node = w->id.node;
	memcpy(s.cluster, w->id.cluster, sizeof(s.cluster));
	s.trim = trim;
	s.gen = gen;
	sb_encode(w->sbuf, &s);
	do
		got = wal_sys.pwrite(w->fd, w->sbuf, WAL_BLOCK, (off_t)(gen % 2) * WAL_BLOCK);
	while (got == -1 && errno == EINTR);
	if (got != WAL_BLOCK) {
		rc = got == -1 ? -errno : -EIO;
		log_error("wal", "%s: superblock write (generation %llu, trim %llu) failed: %s",
			  w->path, (unsigned long long)gen, (unsigned long long)trim,
			  got == -1 ? sl_strerror(rc) : "short write");
		return rc;
	}
	rc = dev_flush(w, "the superblock", trim);
	if (rc)
		return rc;
	w->gen = gen;
	return 0;
}

/* ---- format and open ---- */

static uint64_t new_wal_id(void)
{
	uint64_t id = 0;
	struct timespec a, b;

	/* Uniqueness is what matters, not secrecy: fall back to clocks. */
	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) == (ssize_t)sizeof(id) && id)
		return id;
	clock_gettime(CLOCK_REALTIME, &a);
	clock_gettime(CLOCK_MONOTONIC, &b);
	id ^= (uint64_t)a.tv_sec * 1000000000u + (uint64_t)a.tv_nsec;
	id ^= ((uint64_t)b.tv_nsec << 32) ^ (uint64_t)b.tv_sec ^ ((uint64_t)getpid() << 48);
	return id;
}

/* Make a regular file at least size bytes, allocated where the file system can. */
static int extend_file(int fd, uint64_t size)
{
	if (fallocate(fd, 0, 0, (off_t)size) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -errno;
	if (ftruncate(fd, (off_t)size) == -1)
		return -errno;
	return 0;
}

/*
 * Open path for WAL I/O (O_DIRECT, plus extra flags), lock it, and size it.
 * Two brokers writing one WAL would destroy it; a lock costs nothing.  On
 * success *fd is open; on failure it is closed and why says what failed.
 */
static int open_device(const char *path, int extra, int *fd, struct stat *st, uint64_t *size,
		       char *why, size_t whylen)
{
	int rc, waited;

	*fd = wal_sys.open(path, O_RDWR | O_DIRECT | O_CLOEXEC | extra, 0600);
	if (*fd == -1) {
		rc = -errno;
		say(why, whylen, "cannot open WAL device %s: %s%s", path, sl_strerror(rc),
		    rc == -EINVAL ? " (O_DIRECT not supported there?)" : "");
		return rc;
	}
	/*
	 * A process killed with io_uring writes in flight leaves them to finish
	 * in the kernel; they hold the file, and so its lock, until they have.
	 * Wait for that a little rather than refuse a restart.  The wait is
	 * also what makes the restart safe: once the lock is ours, no write of
	 * the old process can land after recovery has read the log.
	 */
	for (waited = 0; flock(*fd, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK; waited++) {
		struct timespec ts = { 0, LOCK_POLL_MS * 1000000L };

		if (waited == LOCK_WAIT_MS / LOCK_POLL_MS) {
			rc = SL_E_EXISTS;
			say(why, whylen, "WAL device %s is in use by another process", path);
			goto fail;
		}
		nanosleep(&ts, NULL);
	}
	if (waited)
		log_info("wal", "%s: waited %d ms for the lock of a previous user", path,
			 waited * LOCK_POLL_MS);
	if (wal_sys.fstat(*fd, st) == -1) {
		rc = -errno;
		say(why, whylen, "cannot stat %s: %s", path, sl_strerror(rc));
		goto fail;
	}
	rc = device_size(*fd, st, size);
	if (rc) {
		say(why, whylen, "%s: %s", path, rc == SL_E_INVALID ?
		    "neither a regular file nor a block device" : sl_strerror(rc));
		goto fail;
	}
	return 0;
fail:
	wal_sys.close(*fd);
	*fd = -1;
	return rc;
}

int wal_format(const char *path, uint64_t capacity, const struct wal_ident *id, int force,
	       char *why, size_t whylen)
{
	uint8_t *buf = NULL;
	struct stat st;
	struct sb s;
	uint64_t size, ring;
	ssize_t got;
	int fd = -1, rc;

	if (!memchr(id->cluster, 0, sizeof(id->cluster))) {
		say(why, whylen, "cluster id is longer than %zu bytes", sizeof(id->cluster) - 1);
		return SL_E_INVALID;
	}
	rc = open_device(path, O_CREAT, &fd, &st, &size, why, whylen);
	if (rc)
		goto fail;
	buf = block_alloc(3 * WAL_BLOCK);
	if (!buf) {
		rc = SL_E_NOMEM;
		say(why, whylen, "out of memory");
		goto fail;
	}
	if (size >= 2 * WAL_BLOCK) {
		got = wal_sys.pread(fd, buf, 2 * WAL_BLOCK, 0);
		if (got == 2 * WAL_BLOCK && sb_pick(buf, &s) >= 0 && !force) {
			rc = SL_E_EXISTS;
			say(why, whylen, "%s already holds a WAL (cluster %s node %d); formatting "
			    "would destroy it", path, s.cluster, (int)s.node);
			goto fail;
		}
	}
	if (S_ISREG(st.st_mode)) {
		size = align_down(capacity, WAL_BLOCK);
		if (size < WAL_RING_START + RING_MIN) {
			rc = SL_E_INVALID;
			say(why, whylen, "capacity %llu is below the minimum of %llu bytes",
			    (unsigned long long)capacity,
			    (unsigned long long)(WAL_RING_START + RING_MIN));
			goto fail;
		}
		if ((uint64_t)st.st_size < size && (rc = extend_file(fd, size)) != 0) {
			say(why, whylen, "cannot extend %s to %llu bytes: %s", path,
			    (unsigned long long)size, sl_strerror(rc));
			goto fail;
		}
	}
	ring = size < WAL_RING_START ? 0 : align_down(size - WAL_RING_START, WAL_BLOCK);
	if (ring < RING_MIN) {
		rc = SL_E_INVALID;
		say(why, whylen, "%s holds %llu bytes, below the minimum of %llu", path,
		    (unsigned long long)size, (unsigned long long)(WAL_RING_START + RING_MIN));
		goto fail;
	}
	memset(&s, 0, sizeof(s));
	s.version = SB_VERSION;
	s.block = WAL_BLOCK;
	s.ring_start = WAL_RING_START;
	s.ring = ring;
	s.wal_id = new_wal_id();
	s.node = id->node;
	memcpy(s.cluster, id->cluster, sizeof(s.cluster));
	s.trim = 0;
	s.gen = 0;
	/*
	 * Generation 0 in slot 0, slot 1 zeroed, and the ring's first block
	 * zeroed so a fresh WAL reads as empty rather than as garbage (the WAL
	 * id in every record's CRC already rejects an older format's records).
	 */
	sb_encode(buf, &s);
	memset(buf + WAL_BLOCK, 0, 2 * WAL_BLOCK);
	got = wal_sys.pwrite(fd, buf, 3 * WAL_BLOCK, 0);
	if (got != 3 * WAL_BLOCK) {
		rc = got == -1 ? -errno : -EIO;
		say(why, whylen, "cannot write the superblock of %s: %s", path,
		    got == -1 ? sl_strerror(rc) : "short write");
		goto fail;
	}
	if (wal_sys.fdatasync(fd) == -1) {
		rc = -errno;
		say(why, whylen, "cannot flush %s: %s", path, sl_strerror(rc));
		goto fail;
	}
	rc = wal_sys.close(fd);
	fd = -1;
	if (rc == -1) {
		rc = -errno;
		say(why, whylen, "cannot close %s: %s", path, sl_strerror(rc));
		goto fail;
	}
	free(buf);
	log_info("wal", "formatted %s: ring of %llu bytes for cluster %s node %d", path,
		 (unsigned long long)ring, id->cluster, (int)id->node);
	return 0;
fail:
	if (fd != -1)
		wal_sys.close(fd);
	free(buf);
	return rc;
}

struct wal *wal_open(struct loop *l, const char *path, const struct wal_ident *id,
		     int *err, char *why, size_t whylen)
{
	struct wal *w = NULL;
	uint8_t *buf = NULL;
	struct stat st;
	struct sb s;
	uint64_t size;
	ssize_t got;
	int fd = -1, rc, slot;

	rc = open_device(path, 0, &fd, &st, &size, why, whylen);
	if (rc)
		goto fail;
	buf = block_alloc(2 * WAL_BLOCK);
	w = calloc(1, sizeof(*w));
	if (!buf || !w || !(w->path = strdup(path)) || !(w->sbuf = block_alloc(WAL_BLOCK))) {
		rc = SL_E_NOMEM;
		say(why, whylen, "out of memory");
		goto fail;
	}
	got = size >= 2 * WAL_BLOCK ? wal_sys.pread(fd, buf, 2 * WAL_BLOCK, 0) : 0;
	if (got == -1) {
		rc = -errno;
		say(why, whylen, "cannot read the superblocks of %s: %s", path, sl_strerror(rc));
		goto fail;
	}
	if (got != 2 * WAL_BLOCK || (slot = sb_pick(buf, &s)) < 0) {
		rc = SL_E_CORRUPT;
		say(why, whylen, "%s holds no valid WAL superblock (not formatted?)", path);
		goto fail;
	}
	if (s.version != SB_VERSION) {
		rc = SL_E_INVALID;
		say(why, whylen, "%s: WAL format version %u is not supported", path, s.version);
		goto fail;
	}
	if (s.block != WAL_BLOCK || s.ring_start != WAL_RING_START || s.ring < RING_MIN ||
	    s.ring % WAL_BLOCK || s.ring > size - WAL_RING_START || s.trim > POS_MAX ||
	    s.gen > POS_MAX) {
		rc = SL_E_CORRUPT;
		say(why, whylen, "%s: superblock (block %u, ring %llu at %llu, trim %llu, generation "
		    "%llu) does not fit a device of %llu bytes", path, s.block,
		    (unsigned long long)s.ring, (unsigned long long)s.ring_start,
		    (unsigned long long)s.trim, (unsigned long long)s.gen, (unsigned long long)size);
		goto fail;
	}
	if (strncmp(s.cluster, id->cluster, sizeof(s.cluster)) != 0 || s.node != id->node) {
		rc = SL_E_INVALID;
		say(why, whylen, "WAL device %s belongs to cluster %s node %d, not cluster %.64s node %d",
		    path, s.cluster, (int)s.node, id->cluster, (int)id->node);
		goto fail;
	}
	if (!all_zero(buf + (1 - slot) * WAL_BLOCK, WAL_BLOCK)) {
		struct sb other;

		if (sb_decode(buf + (1 - slot) * WAL_BLOCK, 1 - slot, &other) != 0)
			log_warn("wal", "%s: superblock slot %d is damaged; using slot %d (generation %llu)",
				 path, 1 - slot, slot, (unsigned long long)s.gen);
	}
	w->l = l;
	w->fd = fd;
	w->ring = s.ring;
	w->wal_id = s.wal_id;
	{
		uint8_t idb[8];

		sl_store_be64(idb, s.wal_id);
		w->crc_seed = crc32c(0, idb, sizeof(idb));
	}
	w->id = *id;
	memcpy(w->id.cluster, s.cluster, sizeof(w->id.cluster));
	w->gen = s.gen;
	w->trim = w->durable = w->sealed = s.trim;
	w->state = W_OPENED;
	w->flush = needs_flush(&st);
	loop_task_init(&w->turn, wal_turn, w);
	loop_task_init(&w->space, run_space_waiters, w);
	if (io_mode != IO_PWRITE) {
		char uwhy[160];

		rc = uring_open(w, uwhy, sizeof(uwhy));
		if (rc && io_mode == IO_URING) {
			say(why, whylen, "%s: sluice.wal.io is uring, but io_uring is unavailable: %s",
			    path, uwhy);
			goto fail;
		}
		if (rc)
			log_info("wal", "%s: io_uring unavailable (%s); writing with pwrite", path, uwhy);
	}
	free(buf);
	if (err)
		*err = 0;
	log_info("wal", "opened %s: ring %llu bytes, generation %llu, trim %llu, %s, %s",
		 path, (unsigned long long)w->ring, (unsigned long long)w->gen,
		 (unsigned long long)w->trim, w->flush ? "flushing after writes" : "write-through device",
		 w->ur ? "writing with io_uring" : "writing with pwrite");
	return w;
fail:
	if (fd != -1)
		wal_sys.close(fd);
	if (w) {
		free(w->sbuf);
		free(w->path);
		free(w);
	}
	free(buf);
	if (err)
		*err = rc;
	return NULL;
}

/* ---- recovery ---- */

/*
 * The scan keeps a window of the ring in memory, indexed by position:
 * bytes [wpos, wpos + wlen) of the log sit at buf[0, wlen).  It slides
 * forward as records are consumed but always keeps the commit being
 * verified, whose records are replayed from it once the terminator checks
 * out.  wpos and wlen stay multiples of WAL_BLOCK, so reads stay aligned.
 */
struct scan {
	struct wal *w;
	uint8_t *buf;
	size_t cap, wlen;
	uint64_t wpos;
	uint64_t read;			/* bytes read so far */
	int read_err;			/* the read that failed, 0 if none */
	uint64_t read_err_pos;
};

struct pending {
	uint64_t pos;
	uint32_t len;
	uint8_t type;
};

static int scan_grow(struct scan *s, size_t ncap)
{
	uint8_t *nbuf = block_alloc(ncap);

	if (!nbuf)
		return SL_E_NOMEM;
	memcpy(nbuf, s->buf, s->wlen);
	free(s->buf);
	s->buf = nbuf;
	s->cap = ncap;
	return 0;
}

/*
 * Make bytes [a, b) of the log available, keeping everything from keep
 * (<= a) on.  0 and *p pointing at byte a, or a negative error: SL_E_NOMEM,
 * or the read's error (also noted in s->read_err).
 *
 * Reads start small and double up to SCAN_CHUNK once as much has been
 * consumed, so an empty or short log costs little and a long one is read in
 * large pieces.
 */
static int scan_need(struct scan *s, uint64_t keep, uint64_t a, uint64_t b, const uint8_t **p)
{
	struct wal *w = s->w;
	uint64_t k;
	size_t shift;

	SL_ASSERT(keep <= a && a <= b && keep >= s->wpos);
	if (b <= s->wpos + s->wlen) {
		*p = s->buf + (a - s->wpos);
		return 0;
	}
	k = align_down(keep, WAL_BLOCK);
	shift = (size_t)(k - s->wpos);
	if (shift) {
		memmove(s->buf, s->buf + shift, s->wlen - shift);
		s->wlen -= shift;
		s->wpos = k;
	}
	if (b - s->wpos > s->cap && scan_grow(s, (size_t)align_up(b - s->wpos, WAL_BLOCK) + s->cap))
		return SL_E_NOMEM;
	if (s->cap < SCAN_CHUNK && s->read >= s->cap && scan_grow(s, 2 * s->cap))
		return SL_E_NOMEM;
	while (s->wpos + s->wlen < b) {
		uint64_t q = s->wpos + s->wlen;
		uint64_t off = q % w->ring;
		size_t n = s->cap - s->wlen;
		ssize_t got;

		if (n > SCAN_CHUNK)
			n = SCAN_CHUNK;
		if (n > w->ring - off)
			n = (size_t)(w->ring - off);
		do
			got = wal_sys.pread(w->fd, s->buf + s->wlen, n, (off_t)(WAL_RING_START + off));
		while (got == -1 && errno == EINTR);
		if (got == -1) {
			s->read_err = -errno;
			s->read_err_pos = q;
			return s->read_err;
		}
		/* Past a short read there is nothing: zeros fail every check. */
		if ((size_t)got < n)
			memset(s->buf + s->wlen + got, 0, n - (size_t)got);
		s->wlen += n;
		s->read += n;
	}
	*p = s->buf + (a - s->wpos);
	return 0;
}

struct rec_hdr {
	uint32_t magic, len, crc;
	uint8_t type, flags;
	uint16_t reserved;
	uint64_t pos, epoch;
};

static void hdr_decode(const uint8_t *p, struct rec_hdr *h)
{
	struct sl_rd r;

	rd_init(&r, p, HDR);
	/* HDR bytes are there: none of these can fail. */
	if (rd_u32(&r, &h->magic) || rd_u8(&r, &h->type) || rd_u8(&r, &h->flags) ||
	    rd_u16(&r, &h->reserved) || rd_u32(&r, &h->len) || rd_u32(&r, &h->crc) ||
	    rd_u64(&r, &h->pos) || rd_u64(&r, &h->epoch))
		SL_ASSERT(!"short record header");
}

/*
 * CRC of a record: the WAL id, the header with its crc field zero, then the
 * payload and its zero padding to 8 bytes, so every byte of a commit is
 * covered by some record's CRC.
 */
static uint32_t rec_crc(uint32_t seed, const uint8_t *hdr, const uint8_t *payload, size_t len)
{
	uint8_t h[HDR];

	memcpy(h, hdr, HDR);
	memset(h + HDR_CRC_AT, 0, 4);
	return crc32c(crc32c(seed, h, HDR), payload, len);
}

int wal_recover(struct wal *w, wal_replay_fn fn, void *arg, struct wal_recovery *rec)
{
	struct scan s = { .w = w };
	struct pending *pend = NULL;
	size_t npend = 0, cpend = 0, i;
	uint64_t t0 = mono_ms();
	uint64_t expected, gs, gepoch = 0, last_epoch = 0, max_epoch = 0, head, from, trim;
	uint64_t records = 0, bytes = 0;
	struct rec_hdr h;
	const uint8_t *p;
	int rc = 0;

	if (w->state != W_OPENED)
		return SL_E_INVALID;
	s.cap = SCAN_FIRST;
	s.buf = block_alloc(s.cap);
	if (!s.buf)
		return SL_E_NOMEM;
	s.wpos = align_down(w->trim, WAL_BLOCK);
	expected = gs = w->trim;
	for (;;) {
		uint64_t end;

		rc = scan_need(&s, gs, expected, expected + HDR, &p);
		if (rc)
			break;
		hdr_decode(p, &h);
		if (h.magic != REC_MAGIC) {
			snprintf(w->stop, sizeof(w->stop), "end of log at position %llu",
				 (unsigned long long)expected);
			break;
		}
		if (h.pos != expected) {
			snprintf(w->stop, sizeof(w->stop), "end of log at position %llu "
				 "(a record of position %llu is there)", (unsigned long long)expected,
				 (unsigned long long)h.pos);
			break;
		}
		end = expected + rec_size(h.len);
		if (h.len > WAL_MAX_RECORD || h.flags || h.reserved || h.epoch > POS_MAX ||
		    (h.type == 0 && end % WAL_BLOCK) ||
		    end - w->trim > w->ring || end - gs > COMMIT_LIMIT) {
			snprintf(w->stop, sizeof(w->stop), "malformed record header at position %llu "
				 "(type %u, length %u)", (unsigned long long)expected, h.type, h.len);
			break;
		}
		if (expected != gs ? h.epoch != gepoch : h.epoch < last_epoch) {
			snprintf(w->stop, sizeof(w->stop), "end of log at position %llu "
				 "(a record of epoch %llu after epoch %llu)", (unsigned long long)expected,
				 (unsigned long long)h.epoch,
				 (unsigned long long)(expected != gs ? gepoch : last_epoch));
			break;
		}
		rc = scan_need(&s, gs, expected, end, &p);
		if (rc)
			break;
		if (rec_crc(w->crc_seed, p, p + HDR, (size_t)(end - expected) - HDR) != h.crc) {
			snprintf(w->stop, sizeof(w->stop), "CRC mismatch at position %llu",
				 (unsigned long long)expected);
			break;
		}
		gepoch = h.epoch;
		if (h.type != 0) {
			if (npend == cpend) {
				size_t ncap = cpend ? 2 * cpend : 64;
				struct pending *np = realloc(pend, ncap * sizeof(*np));

				if (!np) {
					rc = SL_E_NOMEM;
					break;
				}
				pend = np;
				cpend = ncap;
			}
			pend[npend].pos = expected;
			pend[npend].len = h.len;
			pend[npend].type = h.type;
			npend++;
		} else {
			/* The commit is whole: hand its records over, oldest first. */
			for (i = 0; i < npend; i++) {
				const uint8_t *q = s.buf + (pend[i].pos + HDR - s.wpos);

				if (fn)
					fn(arg, pend[i].type, pend[i].pos, q, pend[i].len);
				records++;
				bytes += pend[i].len;
			}
			npend = 0;
			last_epoch = gepoch;
			if (gepoch > max_epoch)
				max_epoch = gepoch;
			gs = end;
		}
		expected = end;
	}
	if (s.read_err) {
		snprintf(w->stop, sizeof(w->stop), "read error at position %llu: %s",
			 (unsigned long long)s.read_err_pos, sl_strerror(s.read_err));
		log_error("wal", "%s: %s; the log is taken to end there", w->path, w->stop);
		rc = 0;
	}
	free(s.buf);
	free(pend);
	if (rc)
		return rc;
	if (npend) {
		size_t len = strlen(w->stop);

		snprintf(w->stop + len, sizeof(w->stop) - len, "; %zu record%s of the unfinished "
			 "commit at %llu dropped", npend, npend == 1 ? "" : "s", (unsigned long long)gs);
	}
	/* Invariant 2: new commits start on a fresh block. */
	head = align_up(gs, WAL_BLOCK);
	/*
	 * Nothing valid from the trim on, and the trim inside a block: the next
	 * recovery must not start reading at the same bad bytes and miss the
	 * commits written at head.  Those bytes hold nothing, so trim them.
	 */
	from = w->trim;
	trim = gs == w->trim ? head : w->trim;
	/* Invariant 6: this open's epoch exceeds every epoch on the device. */
	rc = sb_write(w, trim, (w->gen > max_epoch ? w->gen : max_epoch) + 1);
	if (rc) {
		w->failed = rc;
		return rc;
	}
	w->epoch = w->gen;
	w->trim = trim;
	w->durable = w->sealed = head;
	w->state = W_READY;
	if (rec) {
		rec->records = records;
		rec->bytes = bytes;
		rec->from = from;
		rec->to = head;
		rec->stop = w->stop;
		rec->ms = mono_ms() - t0;
	}
	log_info("wal", "%s: recovered %llu records (%llu bytes) from position %llu to %llu in "
		 "%llu ms; %s", w->path, (unsigned long long)records, (unsigned long long)bytes,
		 (unsigned long long)from, (unsigned long long)head,
		 (unsigned long long)(mono_ms() - t0), w->stop);
	return 0;
}

/* ---- commits ---- */

static struct commit *commit_new(struct wal *w)
{
	struct commit *c = w->spare;

	if (c) {
		w->spare = c->next;
		w->nspare--;
	} else {
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
	}
	c->next = NULL;
	c->used = 0;
	c->start = w->sealed;
	c->end = 0;
	c->ops = c->ops_tail = NULL;
	c->state = C_OPEN;
	c->err = 0;
	return c;
}

static void commit_free(struct commit *c)
{
	if (c) {
		free(c->buf);
		free(c);
	}
}

static void commit_recycle(struct wal *w, struct commit *c)
{
	/*
	 * Keep one buffer per commit that can be in flight, plus the open one:
	 * a fresh multi-megabyte buffer costs a page fault per page it touches.
	 */
	if (w->nspare < SPARE_COUNT && c->cap <= SPARE_MAX && w->state != W_CLOSING) {
		c->next = w->spare;
		w->spare = c;
		w->nspare++;
	} else {
		commit_free(c);
	}
}

/* Room for n bytes in c's buffer. */
static int commit_reserve(struct commit *c, size_t n)
{
	size_t ncap;
	uint8_t *nbuf;

	if (n <= c->cap)
		return 0;
	ncap = c->cap ? 2 * c->cap : (size_t)64 << 10;
	if (ncap < n)
		ncap = (size_t)align_up(n, WAL_BLOCK);
	nbuf = block_alloc(ncap);
	if (!nbuf)
		return SL_E_NOMEM;
	if (c->used)
		memcpy(nbuf, c->buf, c->used);
	free(c->buf);
	c->buf = nbuf;
	c->cap = ncap;
	return 0;
}

/* Write one record's header at c->used; the payload is already after it. */
static void put_record(struct wal *w, struct commit *c, uint8_t type, size_t len)
{
	uint8_t *h = c->buf + c->used;
	size_t size = (size_t)rec_size(len);

	sl_store_be32(h, REC_MAGIC);
	h[4] = type;
	h[5] = 0;		/* flags */
	h[6] = h[7] = 0;	/* reserved */
	sl_store_be32(h + 8, (uint32_t)len);
	sl_store_be32(h + HDR_CRC_AT, 0);
	sl_store_be64(h + 16, c->start + c->used);
	sl_store_be64(h + 24, w->epoch);
	memset(h + HDR + len, 0, size - HDR - len);
	sl_store_be32(h + HDR_CRC_AT, rec_crc(w->crc_seed, h, h + HDR, size - HDR));
	c->used += size;
}

static void commit_enqueue(struct wal *w, struct commit *c)
{
	c->next = NULL;
	if (w->q_tail)
		w->q_tail->next = c;
	else
		w->q_head = c;
	w->q_tail = c;
}

/*
 * Close the open commit with its terminator: the smallest record that ends
 * on a block boundary (invariant 3), so the commit ends at the first
 * boundary at least HDR bytes past its last record.
 */
static void seal_open(struct wal *w)
{
	struct commit *c = w->open;
	size_t end = (size_t)align_up(c->used + HDR, WAL_BLOCK);
	size_t len = end - c->used - HDR;

	SL_ASSERT(c->used && end <= c->cap);
	memset(c->buf + c->used + HDR, 0, len);
	put_record(w, c, 0, len);
	SL_ASSERT(c->used == end);
	c->end = c->start + end;
	c->state = C_SEALED;
	w->sealed = c->end;
	w->open = NULL;
	commit_enqueue(w, c);
}

/* Complete finished commits from the head of the queue (invariant 4). */
static void commits_reap(struct wal *w)
{
	struct commit *c;

	while ((c = w->q_head) && c->state == C_DONE) {
		struct wal_op *op, *next;
		int err = c->err ? c->err : w->failed;

		w->q_head = c->next;
		if (!w->q_head)
			w->q_tail = NULL;
		if (err && !w->failed) {
			w->failed = err;
			log_error("wal", "%s: the commit at position %llu failed (%s); the WAL is "
				  "read-only from now on and nothing more is acknowledged", w->path,
				  (unsigned long long)c->start, sl_strerror(err));
		}
		if (!err) {
			w->durable = c->end;
			w->commits++;
			w->bytes_written += c->end - c->start;
		}
		op = c->ops;
		c->ops = c->ops_tail = NULL;
		commit_recycle(w, c);
		w->in_cb++;
		for (; op; op = next) {
			next = op->next;
			op->next = NULL;
			if (op->fn)
				op->fn(op->arg, err);
		}
		w->in_cb--;
	}
}

static void commit_done(struct wal *w, struct commit *c, int err)
{
	c->err = err;
	c->state = C_DONE;
	commits_reap(w);
}

/* Write bytes [pos, pos + n) of the log from p, splitting at the ring's end. */
static int dev_write(struct wal *w, const uint8_t *p, size_t n, uint64_t pos)
{
	while (n) {
		uint64_t off = pos % w->ring;
		size_t k = n;
		ssize_t got;

		if (k > w->ring - off)
			k = (size_t)(w->ring - off);
		do
			got = wal_sys.pwrite(w->fd, p, k, (off_t)(WAL_RING_START + off));
		while (got == -1 && errno == EINTR);
		if (got != (ssize_t)k) {
			int rc = got == -1 ? -errno : -EIO;

			log_error("wal", "%s: write of %zu bytes at position %llu (device offset %llu) "
				  "failed: %s", w->path, k, (unsigned long long)pos,
				  (unsigned long long)(WAL_RING_START + off),
				  got == -1 ? sl_strerror(rc) : "short write");
			return rc;
		}
		p += k;
		n -= k;
		pos += k;
	}
	return 0;
}

/* The plain path: write, flush, complete, all before returning. */
static void commit_submit(struct wal *w, struct commit *c)
{
	int rc;

	c->state = C_SUBMITTED;
	rc = dev_write(w, c->buf, c->used, c->start);
	if (rc == 0)
		rc = dev_flush(w, "the commit", c->start);
	commit_done(w, c, rc);
}

/* ---- the io_uring path ---- */

/*
 * The rings, mapped from the kernel (io_uring_setup(2)).  The submission
 * side: we fill sqes[tail & sq_mask] and publish by moving *sq_tail; the
 * kernel consumes up to *sq_head.  sq_array maps ring slots to sqes and is
 * set to the identity once.  The completion side: the kernel fills cqes and
 * moves *cq_tail; we consume and move *cq_head.  Tails and heads the other
 * side writes are read with acquire, ours published with release, so an
 * entry's contents are visible before the index that hands it over.
 */
struct uring {
	int fd, efd;
	void *sq_map, *cq_map;		/* cq_map == sq_map with IORING_FEAT_SINGLE_MMAP */
	size_t sq_map_len, cq_map_len;
	struct io_uring_sqe *sqes;
	size_t sqes_len;
	unsigned *sq_head, *sq_tail, *sq_array, sq_mask, sq_entries;
	unsigned *cq_head, *cq_tail, cq_mask;
	struct io_uring_cqe *cqes;
	unsigned inflight;		/* commits submitted, not all requests completed */
};

/* No libc wrappers for these (musl has none); the kernel ABI directly. */
static int uring_setup(unsigned entries, struct io_uring_params *p)
{
	return (int)syscall(SYS_io_uring_setup, entries, p);
}

static int uring_enter(int fd, unsigned submit, unsigned min_complete, unsigned flags)
{
	return (int)syscall(SYS_io_uring_enter, fd, submit, min_complete, flags, NULL, 0);
}

static int uring_register(int fd, unsigned op, void *arg, unsigned n)
{
	return (int)syscall(SYS_io_uring_register, fd, op, arg, n);
}

static void uring_free(struct uring *u)
{
	if (!u)
		return;
	if (u->sqes)
		munmap(u->sqes, u->sqes_len);
	if (u->cq_map && u->cq_map != u->sq_map)
		munmap(u->cq_map, u->cq_map_len);
	if (u->sq_map)
		munmap(u->sq_map, u->sq_map_len);
	if (u->efd != -1)
		close(u->efd);
	if (u->fd != -1)
		close(u->fd);
	free(u);
}

static void *map_ring(int fd, size_t len, off_t what)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, what);

	return p == MAP_FAILED ? NULL : p;
}

/* Whether the kernel knows the opcodes we queue (IORING_OP_WRITE is 5.6). */
static int uring_probe(int fd)
{
	size_t size = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
	struct io_uring_probe *pr = calloc(1, size);
	int rc = 0;

	if (!pr)
		return SL_E_NOMEM;
	if (uring_register(fd, IORING_REGISTER_PROBE, pr, 256) == -1) {
		/* Before 5.6 there is no probe, and no IORING_OP_WRITE either. */
		rc = errno == EINVAL ? -EOPNOTSUPP : -errno;
	} else if (pr->last_op < IORING_OP_WRITE ||
		   !(pr->ops[IORING_OP_WRITE].flags & IO_URING_OP_SUPPORTED) ||
		   !(pr->ops[IORING_OP_FSYNC].flags & IO_URING_OP_SUPPORTED) ||
		   !(pr->ops[IORING_OP_NOP].flags & IO_URING_OP_SUPPORTED)) {
		rc = -EOPNOTSUPP;
	}
	free(pr);
	return rc;
}

/*
 * Set up a ring for w and watch its eventfd from the loop.  0, or a
 * negative error with why filled (-ENOSYS: a kernel without io_uring;
 * -EPERM: a seccomp filter or kernel.io_uring_disabled).
 */
static int uring_open(struct wal *w, char *why, size_t whylen)
{
	struct io_uring_params p;
	struct uring *u = calloc(1, sizeof(*u));
	unsigned i;
	int rc;

	if (!u) {
		say(why, whylen, "out of memory");
		return SL_E_NOMEM;
	}
	u->fd = u->efd = -1;
	memset(&p, 0, sizeof(p));
	u->fd = uring_setup(URING_ENTRIES, &p);
	if (u->fd == -1) {
		rc = -errno;
		say(why, whylen, "io_uring_setup: %s", sl_strerror(rc));
		goto fail;
	}
	u->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	u->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (u->cq_map_len > u->sq_map_len)
			u->sq_map_len = u->cq_map_len;
		u->cq_map_len = u->sq_map_len;
	}
	u->sq_map = map_ring(u->fd, u->sq_map_len, IORING_OFF_SQ_RING);
	if (u->sq_map)
		u->cq_map = p.features & IORING_FEAT_SINGLE_MMAP ? u->sq_map :
			map_ring(u->fd, u->cq_map_len, IORING_OFF_CQ_RING);
	u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	if (u->cq_map)
		u->sqes = map_ring(u->fd, u->sqes_len, IORING_OFF_SQES);
	if (!u->sqes) {
		rc = -errno;
		say(why, whylen, "mapping the io_uring rings: %s", sl_strerror(rc));
		goto fail;
	}
	u->sq_head = (unsigned *)((uint8_t *)u->sq_map + p.sq_off.head);
	u->sq_tail = (unsigned *)((uint8_t *)u->sq_map + p.sq_off.tail);
	u->sq_mask = *(unsigned *)((uint8_t *)u->sq_map + p.sq_off.ring_mask);
	u->sq_array = (unsigned *)((uint8_t *)u->sq_map + p.sq_off.array);
	u->sq_entries = p.sq_entries;
	u->cq_head = (unsigned *)((uint8_t *)u->cq_map + p.cq_off.head);
	u->cq_tail = (unsigned *)((uint8_t *)u->cq_map + p.cq_off.tail);
	u->cq_mask = *(unsigned *)((uint8_t *)u->cq_map + p.cq_off.ring_mask);
	u->cqes = (struct io_uring_cqe *)((uint8_t *)u->cq_map + p.cq_off.cqes);
	SL_ASSERT(u->sq_entries >= URING_DEPTH * URING_REQS);
	for (i = 0; i < p.sq_entries; i++)
		u->sq_array[i] = i;
	rc = uring_probe(u->fd);
	if (rc) {
		say(why, whylen, "io_uring lacks IORING_OP_WRITE or IORING_OP_FSYNC: %s",
		    sl_strerror(rc));
		goto fail;
	}
	u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->efd == -1) {
		rc = -errno;
		say(why, whylen, "eventfd: %s", sl_strerror(rc));
		goto fail;
	}
	if (uring_register(u->fd, IORING_REGISTER_EVENTFD, &u->efd, 1) == -1) {
		rc = -errno;
		say(why, whylen, "registering the io_uring eventfd: %s", sl_strerror(rc));
		goto fail;
	}
	rc = loop_add(w->l, u->efd, LOOP_READ, uring_completions, w);
	if (rc) {
		say(why, whylen, "watching the io_uring eventfd: %s", sl_strerror(rc));
		goto fail;
	}
	w->ur = u;
	return 0;
fail:
	uring_free(u);
	return rc;
}

static void uring_close(struct wal *w)
{
	if (!w->ur)
		return;
	loop_del(w->l, w->ur->efd);
	uring_free(w->ur);
	w->ur = NULL;
}

/* One request of c completed with res: note how it ended; finish c after its last. */
static void uring_request_done(struct wal *w, struct commit *c, int i, int res)
{
	int err = 0;

	SL_ASSERT(i < c->nreq && c->ndone < c->nreq);
	if (c->rerr[i] == 0) {
		if (res < 0)
			err = res;
		else if (c->rlen[i] && (size_t)res != c->rlen[i])
			err = -EIO;
		c->rerr[i] = err;
		if (err && err != -ECANCELED) {
			if (c->rlen[i])
				log_error("wal", "%s: write of %zu bytes at position %llu failed: %s", w->path,
					  c->rlen[i], (unsigned long long)c->rpos[i],
					  res < 0 ? sl_strerror(err) : "short write");
			else
				log_error("wal", "%s: flush after the commit at position %llu failed: %s",
					  w->path, (unsigned long long)c->start, sl_strerror(err));
		}
	}
	if (++c->ndone < c->nreq)
		return;
	w->ur->inflight--;
	/* The first failure in chain order: a cancelled flush is the write's fault. */
	for (i = 0, err = 0; i < c->nreq && !err; i++)
		err = c->rerr[i];
	commit_done(w, c, err);
}

/* Consume every completion the kernel has posted. */
static void uring_reap(struct wal *w)
{
	struct uring *u = w->ur;
	unsigned head = *u->cq_head;	/* only we move it */
	unsigned tail;

	while (head != (tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE))) {
		for (; head != tail; head++) {
			struct io_uring_cqe *cqe = &u->cqes[head & u->cq_mask];
			struct commit *c = (struct commit *)(uintptr_t)(cqe->user_data & ~(uint64_t)3);
			int i = (int)(cqe->user_data & 3), res = cqe->res;

			/* Hand the slot back before callbacks run. */
			__atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
			uring_request_done(w, c, i, res);
		}
	}
}

/* Fill the next free submission slot (off slots past tail) for request i of c. */
static struct io_uring_sqe *sqe_at(struct uring *u, unsigned tail, struct commit *c, int i)
{
	struct io_uring_sqe *sqe = &u->sqes[(tail + (unsigned)i) & u->sq_mask];

	memset(sqe, 0, sizeof(*sqe));
	sqe->user_data = (uint64_t)(uintptr_t)c | (uint64_t)i;
	return sqe;
}

/*
 * Queue c's chain (see the top of the file) and hand it to the kernel.
 * Fault hooks may turn a request into a failing no-op, which ends the chain.
 */
static void uring_submit(struct wal *w, struct commit *c)
{
	struct uring *u = w->ur;
	unsigned tail = *u->sq_tail;	/* only we move it */
	const uint8_t *p = c->buf;
	uint64_t pos = c->start;
	size_t n = c->used;
	unsigned left;
	int i, rc = 0;

	/* user_data keeps the request index in the pointer's low bits. */
	SL_ASSERT(((uintptr_t)c & 3) == 0);
	SL_ASSERT(tail - __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE) + URING_REQS <= u->sq_entries);
	c->state = C_SUBMITTED;
	c->nreq = c->ndone = 0;
	while (n && !rc) {
		uint64_t off = pos % w->ring;
		size_t k = n > w->ring - off ? (size_t)(w->ring - off) : n;
		struct io_uring_sqe *sqe = sqe_at(u, tail, c, c->nreq);

		if (wal_uring_faults.write)
			rc = wal_uring_faults.write(w->fd, p, k, (off_t)(WAL_RING_START + off));
		if (rc) {
			sqe->opcode = IORING_OP_NOP;
		} else {
			sqe->opcode = IORING_OP_WRITE;
			sqe->fd = w->fd;
			sqe->addr = (uint64_t)(uintptr_t)p;
			sqe->len = (uint32_t)k;
			sqe->off = WAL_RING_START + off;
		}
		c->rlen[c->nreq] = k;
		c->rpos[c->nreq] = pos;
		c->rerr[c->nreq] = rc;
		c->nreq++;
		p += k;
		n -= k;
		pos += k;
	}
	if (!rc && w->flush) {
		struct io_uring_sqe *sqe = sqe_at(u, tail, c, c->nreq);

		if (wal_uring_faults.flush)
			rc = wal_uring_faults.flush(w->fd);
		if (rc) {
			sqe->opcode = IORING_OP_NOP;
		} else {
			sqe->opcode = IORING_OP_FSYNC;
			sqe->fd = w->fd;
			sqe->fsync_flags = IORING_FSYNC_DATASYNC;
		}
		c->rlen[c->nreq] = 0;
		c->rpos[c->nreq] = c->start;
		c->rerr[c->nreq] = rc;
		c->nreq++;
	}
	for (i = 0; i + 1 < c->nreq; i++)
		u->sqes[(tail + (unsigned)i) & u->sq_mask].flags |= IOSQE_IO_LINK;
	__atomic_store_n(u->sq_tail, tail + (unsigned)c->nreq, __ATOMIC_RELEASE);
	u->inflight++;
	left = (unsigned)c->nreq;
	while (left) {
		int got = uring_enter(u->fd, left, 0, 0);

		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1) {
			rc = -errno;
			break;
		}
		if (got == 0) {
			/* Nothing taken and no error: a ring in a state we do not know. */
			rc = -EIO;
			break;
		}
		left -= (unsigned)got;
	}
	if (left) {
		/*
		 * The kernel took none of the last `left` requests (it takes a
		 * prefix or returns an error): take them back and fail them here.
		 */
		log_error("wal", "%s: io_uring_enter for the commit at position %llu failed: %s",
			  w->path, (unsigned long long)c->start, sl_strerror(rc));
		__atomic_store_n(u->sq_tail, tail + (unsigned)c->nreq - left, __ATOMIC_RELEASE);
		for (i = c->nreq - (int)left; i < c->nreq; i++)
			uring_request_done(w, c, i, rc);
	}
}

/* The loop saw the eventfd: complete what finished, send what waited for room. */
static void uring_completions(struct loop *l, int fd, unsigned events, void *arg)
{
	struct wal *w = arg;
	uint64_t count;

	/* The count is only a wake-up; the completion ring says what finished. */
	if (read(fd, &count, sizeof(count)) == -1 && errno != EAGAIN && errno != EINTR)
		log_warn("wal", "%s: reading the io_uring eventfd: %s", w->path, sl_strerror(-errno));
	uring_reap(w);
	commits_submit(w);
}

/*
 * Wait until nothing is in flight (wal_close): the kernel may still be
 * reading commit buffers and using the descriptor until then.
 */
static void uring_drain(struct wal *w)
{
	while (w->ur->inflight) {
		if (uring_enter(w->ur->fd, 0, 1, IORING_ENTER_GETEVENTS) == -1 &&
		    errno != EINTR && errno != EAGAIN && errno != EBUSY) {
			log_error("wal", "%s: waiting for io_uring completions: %s", w->path,
				  sl_strerror(-errno));
			SL_ASSERT(!"io_uring_enter failed with writes in flight");
		}
		uring_reap(w);
		commits_submit(w);
	}
}

/*
 * Submit every sealed commit, in order, as far as the io_uring path has
 * room; after a failure, fail them unwritten.
 */
static void commits_submit(struct wal *w)
{
	struct commit *c;

	for (;;) {
		for (c = w->q_head; c && c->state != C_SEALED; c = c->next)
			;
		if (!c)
			break;
		if (w->failed) {
			c->state = C_SUBMITTED;
			commit_done(w, c, w->failed);
		} else if (w->ur) {
			if (w->ur->inflight >= URING_DEPTH)
				break;
			uring_submit(w, c);
		} else {
			commit_submit(w, c);
		}
	}
}

/* End of the turn: everything appended goes out as one commit. */
static void wal_turn(struct loop *l, void *arg)
{
	struct wal *w = arg;

	if (w->open && w->open->used)
		seal_open(w);
	commits_submit(w);
}

/* ---- the API ---- */

int wal_append(struct wal *w, uint8_t type, const struct wal_span *parts, int n, struct wal_op *op)
{
	struct commit *c;
	uint64_t start, size, used;
	size_t len = 0, at;
	int i, seal = 0;

	if (w->state != W_READY)
		return w->state == W_OPENED ? SL_E_INVALID : SL_E_CLOSED;
	if (w->failed)
		return SL_E_CLOSED;
	if (type == 0 || n < 0 || (n > 0 && !parts))
		return SL_E_INVALID;
	for (i = 0; i < n; i++) {
		if (parts[i].len > WAL_MAX_RECORD - len)
			return SL_E_TOOBIG;
		len += parts[i].len;
	}
	size = rec_size(len);
	/* Where the record would go, and where its commit would end (invariant 1). */
	start = w->sealed;
	used = w->open ? w->open->used : 0;
	if (used && used + size > COMMIT_TARGET) {
		start += align_up(used + HDR, WAL_BLOCK);
		used = 0;
		seal = 1;
	}
	if (start + align_up(used + size + HDR, WAL_BLOCK) - w->trim > w->ring)
		return SL_E_FULL;
	if (seal)
		seal_open(w);
	if (!w->open && !(w->open = commit_new(w)))
		return SL_E_NOMEM;
	c = w->open;
	if (commit_reserve(c, (size_t)align_up(c->used + size + HDR, WAL_BLOCK)) != 0)
		return SL_E_NOMEM;
	at = c->used + HDR;
	for (i = 0; i < n; i++) {
		if (parts[i].len)
			memcpy(c->buf + at, parts[i].p, parts[i].len);
		at += parts[i].len;
	}
	put_record(w, c, type, len);
	if (op) {
		op->end = c->start + c->used;
		op->next = NULL;
		if (c->ops_tail)
			c->ops_tail->next = op;
		else
			c->ops = op;
		c->ops_tail = op;
	}
	loop_defer(w->l, &w->turn);
	return 0;
}

static void run_space_waiters(struct loop *l, void *arg)
{
	struct wal *w = arg;
	struct wal_space_waiter *sw;

	/* Waiters that re-arm join the next round, not this one. */
	w->firing = w->waiters;
	w->waiters = NULL;
	while ((sw = w->firing)) {
		w->firing = sw->next;
		sw->next = NULL;
		sw->armed = 0;
		sw->fn(l, sw->arg);
	}
}

int wal_trim(struct wal *w, uint64_t pos)
{
	int rc;

	if (w->state == W_OPENED || pos > w->durable)
		return SL_E_INVALID;
	if (w->state != W_READY || w->failed)
		return SL_E_CLOSED;
	if (pos <= w->trim)
		return 0;
	rc = sb_write(w, pos, w->gen + 1);
	if (rc) {
		/* Invariant 7: a device that failed a superblock write is not trusted. */
		w->failed = rc;
		log_error("wal", "%s: the WAL is read-only from now on", w->path);
		return rc;
	}
	w->trim = pos;
	if (w->waiters) {
		loop_defer(w->l, &w->space);
	}
	return 0;
}

void wal_space_wait(struct wal *w, struct wal_space_waiter *sw)
{
	struct wal_space_waiter **pp;

	if (sw->armed)
		return;
	for (pp = &w->waiters; *pp; pp = &(*pp)->next)
		;
	sw->next = NULL;
	sw->armed = 1;
	*pp = sw;
}

static int unlink_waiter(struct wal_space_waiter **pp, struct wal_space_waiter *sw)
{
	for (; *pp; pp = &(*pp)->next) {
		if (*pp == sw) {
			*pp = sw->next;
			return 1;
		}
	}
	return 0;
}

void wal_space_cancel(struct wal *w, struct wal_space_waiter *sw)
{
	if (!sw->armed)
		return;
	if (!unlink_waiter(&w->waiters, sw))
		unlink_waiter(&w->firing, sw);
	sw->next = NULL;
	sw->armed = 0;
}

void wal_stats(const struct wal *w, struct wal_stats *st)
{
	const struct commit *c;

	memset(st, 0, sizeof(*st));
	st->capacity = w->ring;
	st->trim = w->trim;
	st->durable = w->durable;
	st->head = w->sealed + (w->open ? w->open->used : 0);
	st->commits = w->commits;
	st->bytes_written = w->bytes_written;
	st->volatile_cache = w->flush;
	st->uring = w->ur != NULL;
	for (c = w->q_head; c; c = c->next)
		st->inflight++;
}

void wal_close(struct wal *w)
{
	struct wal_space_waiter *sw;

	if (!w)
		return;
	/* Callbacks run with the WAL's lists in hand; closing under them would pull them away. */
	SL_ASSERT(!w->in_cb);
	loop_task_cancel(w->l, &w->turn);
	loop_task_cancel(w->l, &w->space);
	if (w->state == W_READY) {
		/* Appends from the callbacks below are refused. */
		w->state = W_CLOSING;
		if (w->open && w->open->used)
			seal_open(w);
		commits_submit(w);
	}
	w->state = W_CLOSING;
	if (w->ur) {
		uring_drain(w);
		uring_close(w);
	}
	SL_ASSERT(!w->q_head);
	while ((sw = w->waiters)) {
		w->waiters = sw->next;
		sw->next = NULL;
		sw->armed = 0;
	}
	commit_free(w->open);
	while (w->spare) {
		struct commit *c = w->spare;
		w->spare = c->next;
		commit_free(c);
	}
	w->nspare = 0;
	if (wal_sys.close(w->fd) == -1)
		log_warn("wal", "%s: close failed: %s", w->path, sl_strerror(-errno));
	free(w->sbuf);
	free(w->path);
	free(w);
}
