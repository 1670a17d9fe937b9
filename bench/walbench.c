/*
 * walbench.c - the WAL alone: appends of a fixed size on a fresh WAL file,
 * through the real loop and the real storage/wal.c, on either write path,
 * timed from wal_append() to the op's callback (the record is durable).
 * bench/run.sh runs it beside fio on the same file system; bench/README.md
 * says how to read the two.
 *
 *   walbench --file PATH --io pwrite|uring --bs BYTES --depth N
 *            [--seconds S] [--bytes B] [--ring BYTES]
 *
 * Each append's payload is BYTES - 64, so that a commit of one record (its
 * 32-byte header, the 32-byte terminator) is exactly BYTES on the device:
 * at depth 1 the WAL writes what fio writes with --bs=BYTES, plus the
 * superblock writes of a trim every half ring.
 *
 * depth N keeps N appends outstanding.  They are started over the first
 * min(N, 4) loop turns, so that on the io_uring path several commits are in
 * flight from the start; after that each callback appends the next record,
 * and a turn's appends form one commit.  Depth 1 is fio's iodepth=1: one
 * append, wait for its callback, the next.
 *
 * The file is written in full with zeros before it is formatted, as fio lays
 * out its file before timing: both then overwrite allocated blocks, and
 * neither pays for allocating extents while timed.
 *
 * Prints one line of key=value fields:
 *   walbench io=uring depth=1 bs=4096 appends=N seconds=S mb_per_s=X
 *            dev_mb_per_s=Y p50_us=A p99_us=B p999_us=C commits=K
 * mb_per_s counts payload bytes, dev_mb_per_s the bytes the commits took on
 * the device; MB = 2^20 bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "../storage/wal.h"
#include "../kernel/log.h"

#define MAXDEPTH 64
#define SEED_TURNS 4

struct bop {
	struct wal_op op;
	uint64_t t0;		/* ns, at wal_append */
};

static struct {
	struct loop *l;
	struct wal *w;
	uint8_t *payload;
	size_t len;
	uint64_t ring, trim;
	uint64_t deadline_ns, byte_goal, appended_bytes;
	int outstanding, stopping, failed;
	uint64_t *lat;		/* ns per completed append */
	size_t nlat, caplat;
	struct bop ops[MAXDEPTH];
} b;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_done(void *arg, int err);

static int append_one(struct bop *o)
{
	struct wal_span sp = { b.payload, b.len };
	int rc;

	o->op.fn = on_done;
	o->op.arg = o;
	o->t0 = now_ns();
	rc = wal_append(b.w, 1, &sp, 1, &o->op);
	if (rc) {
		fprintf(stderr, "walbench: wal_append: %s\n", sl_strerror(rc));
		b.failed = 1;
		return rc;
	}
	b.outstanding++;
	b.appended_bytes += b.len;
	return 0;
}

static void on_done(void *arg, int err)
{
	struct bop *o = arg;
	uint64_t t = now_ns();

	b.outstanding--;
	if (err) {
		fprintf(stderr, "walbench: append failed: %s\n", sl_strerror(err));
		b.failed = 1;
	}
	if (b.nlat == b.caplat) {
		size_t ncap = b.caplat ? 2 * b.caplat : 65536;
		uint64_t *n = realloc(b.lat, ncap * sizeof(*n));

		if (!n) {
			fprintf(stderr, "walbench: out of memory\n");
			exit(1);
		}
		b.lat = n;
		b.caplat = ncap;
	}
	b.lat[b.nlat++] = t - o->t0;
	/* Keep at most half the ring live; a trim is one superblock write and flush. */
	if (!err && o->op.end - b.trim > b.ring / 2) {
		int rc = wal_trim(b.w, o->op.end);

		if (rc) {
			fprintf(stderr, "walbench: wal_trim: %s\n", sl_strerror(rc));
			b.failed = 1;
		}
		b.trim = o->op.end;
	}
	if (!b.failed && !b.stopping &&
	    (t >= b.deadline_ns || (b.byte_goal && b.appended_bytes >= b.byte_goal)))
		b.stopping = 1;
	if (!b.failed && !b.stopping)
		append_one(o);
	if (b.outstanding == 0)
		loop_stop(b.l);
}

static struct loop_task stop_task;
static void stop_fn(struct loop *l, void *arg) { loop_stop(l); }

static int cmp_u64(const void *a, const void *c)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)c;

	return x < y ? -1 : x > y;
}

/* Nearest rank. */
static double pct_us(double p)
{
	size_t k = (size_t)(p / 100.0 * (double)b.nlat + 0.999999);

	if (k < 1)
		k = 1;
	if (k > b.nlat)
		k = b.nlat;
	return (double)b.lat[k - 1] / 1000.0;
}

/* Write the whole file with zeros and flush it (fio's layout step). */
static int lay_out(const char *path, uint64_t size)
{
	size_t chunk = (size_t)1 << 20;
	uint8_t *z = calloc(1, chunk);
	struct stat st;
	uint64_t off;
	int fd;

	if (stat(path, &st) == 0 && (uint64_t)st.st_size == size) {
		free(z);
		return 0;	/* laid out by an earlier run: overwritten in place */
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || !z) {
		fprintf(stderr, "walbench: %s: %s\n", path, strerror(errno));
		free(z);
		return -1;
	}
	for (off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? (size_t)(size - off) : chunk;

		if (pwrite(fd, z, n, (off_t)off) != (ssize_t)n) {
			fprintf(stderr, "walbench: laying out %s: %s\n", path, strerror(errno));
			close(fd);
			free(z);
			return -1;
		}
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		fprintf(stderr, "walbench: flushing %s: %s\n", path, strerror(errno));
		free(z);
		return -1;
	}
	free(z);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: walbench --file PATH --io pwrite|uring --bs BYTES --depth N "
		"[--seconds S] [--bytes B] [--ring BYTES]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *path = NULL, *io = "uring";
	static const struct wal_ident id = { "walbench", 0 };
	uint64_t bs = 4096, bytes = 0, ring = (uint64_t)256 << 20;
	double seconds = 5;
	int depth = 1, i, seed, err = 0;
	struct wal_recovery rec;
	struct wal_stats st;
	uint64_t t0, t1;
	char why[256];

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (strcmp(a, "--file") == 0)
			path = v;
		else if (strcmp(a, "--io") == 0)
			io = v;
		else if (strcmp(a, "--bs") == 0)
			bs = strtoull(v, NULL, 0);
		else if (strcmp(a, "--depth") == 0)
			depth = atoi(v);
		else if (strcmp(a, "--seconds") == 0)
			seconds = atof(v);
		else if (strcmp(a, "--bytes") == 0)
			bytes = strtoull(v, NULL, 0);
		else if (strcmp(a, "--ring") == 0)
			ring = strtoull(v, NULL, 0);
		else
			usage();
		i++;
	}
	if (!path || bs < WAL_BLOCK || bs % WAL_BLOCK || bs - 64 > WAL_MAX_RECORD ||
	    depth < 1 || depth > MAXDEPTH || seconds <= 0 || ring % WAL_BLOCK ||
	    ring < 4 * bs * (uint64_t)depth)
		usage();
	if (wal_set_io(io) != 0)
		usage();
	log_set_level(LOG_WARN);
	if (lay_out(path, WAL_RING_START + ring) != 0)
		return 1;
	if (wal_format(path, WAL_RING_START + ring, &id, 1, why, sizeof(why)) != 0) {
		fprintf(stderr, "walbench: format: %s\n", why);
		return 1;
	}
	b.l = loop_new();
	if (!b.l) {
		fprintf(stderr, "walbench: loop_new: %s\n", strerror(errno));
		return 1;
	}
	b.w = wal_open(b.l, path, &id, &err, why, sizeof(why));
	if (!b.w) {
		fprintf(stderr, "walbench: open: %s\n", why);
		return 1;
	}
	if (wal_recover(b.w, NULL, NULL, &rec) != 0) {
		fprintf(stderr, "walbench: recovery failed\n");
		return 1;
	}
	b.ring = ring;
	b.len = (size_t)bs - 64;
	b.payload = malloc(b.len);
	if (!b.payload)
		return 1;
	for (i = 0; i < (int)b.len; i++)
		b.payload[i] = (uint8_t)(i * 131 + 7);
	b.byte_goal = bytes;
	t0 = now_ns();
	b.deadline_ns = t0 + (uint64_t)(seconds * 1e9);
	/*
	 * Start the depth over a few turns: several commits in flight, not one.
	 * The pwrite path completes a commit within its turn, and its callbacks'
	 * appends chain on inside that turn, so there all start in one turn.
	 */
	wal_stats(b.w, &st);
	seed = !st.uring ? 1 : depth < SEED_TURNS ? depth : SEED_TURNS;
	for (i = 0; i < depth && !b.failed; i++) {
		append_one(&b.ops[i]);
		if (seed > 1 && (i + 1) % ((depth + seed - 1) / seed) == 0 && i + 1 < depth) {
			loop_task_init(&stop_task, stop_fn, NULL);
			loop_defer(b.l, &stop_task);
			loop_run(b.l);
		}
	}
	if (b.outstanding)
		loop_run(b.l);
	t1 = now_ns();
	wal_stats(b.w, &st);
	wal_close(b.w);
	loop_destroy(b.l);
	if (b.failed || !b.nlat)
		return 1;
	qsort(b.lat, b.nlat, sizeof(*b.lat), cmp_u64);
	{
		double secs = (double)(t1 - t0) / 1e9;
		double mb = (double)b.nlat * (double)b.len / (1 << 20);

		printf("walbench io=%s depth=%d bs=%llu appends=%zu seconds=%.3f mb_per_s=%.1f "
		       "dev_mb_per_s=%.1f p50_us=%.0f p99_us=%.0f p999_us=%.0f commits=%llu\n",
		       st.uring ? "uring" : "pwrite", depth, (unsigned long long)bs, b.nlat, secs,
		       mb / secs, (double)st.bytes_written / (1 << 20) / secs, pct_us(50), pct_us(99),
		       pct_us(99.9), (unsigned long long)st.commits);
	}
	free(b.lat);
	free(b.payload);
	return 0;
}
