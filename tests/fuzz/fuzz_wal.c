/*
 * fuzz_wal.c - libFuzzer target for WAL recovery.
 *
 * Each input becomes a WAL image in memory, served to the WAL through an
 * in-memory wal_sys (which also insists on O_DIRECT alignment for every
 * read and write).  The image is opened and recovered; then a few records
 * are appended, the WAL closed (which writes them), and the image recovered
 * a second time: that recovery must replay what the first one did, then the
 * appended records, in order.
 *
 * Input:
 *   byte 0      flags: bit 0 CHAIN - repair magic, position, epoch and CRC
 *               of each record along the chain from the trim, so the fuzzer
 *               explores commits, terminators and epochs rather than CRCs;
 *               bit 1 RAWSB - the input carries both superblock slots;
 *               bit 2 FIXSB - with RAWSB, recompute their CRCs;
 *               bits 4-7 the superblock's generation (when built here)
 *   bytes 1-8   the trim position (big-endian), when the superblock is built
 *   the rest    ring bytes from the trim position on (wrapping at the
 *               ring's end); with RAWSB, 8192 bytes of superblock slots,
 *               then ring bytes from device offset 8192
 *
 * Built with -DFUZZ_WAL_MAKE_SEEDS it is instead a program that writes seeds
 * made by real appends: fuzz_wal DIR.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "storage/wal.h"
#include "kernel/buf.h"
#include "kernel/crc32c.h"
#include "kernel/log.h"

#define RING ((uint64_t)1 << 20)
#define IMG (WAL_RING_START + RING)
#define FAKE_FD 1000000		/* not a descriptor: flock() fails with EBADF */
#define WAL_ID 0x0123456789abcdefull
#define HDR 32

enum { CHAIN = 1, RAWSB = 2, FIXSB = 4 };

static uint8_t *img;
static struct loop *lp;
static const struct wal_ident ident = { "fuzz", 7 };

static void check_aligned(const void *buf, size_t n, off_t off)
{
	if ((uintptr_t)buf % WAL_BLOCK || n % WAL_BLOCK || off % WAL_BLOCK || off < 0 ||
	    (uint64_t)off + n > IMG)
		abort();
}

static int m_open(const char *path, int flags, mode_t mode) { return FAKE_FD; }
static int m_close(int fd) { return 0; }
static int m_fdatasync(int fd) { return 0; }

static ssize_t m_pread(int fd, void *buf, size_t n, off_t off)
{
	check_aligned(buf, n, off);
	memcpy(buf, img + off, n);
	return (ssize_t)n;
}

static ssize_t m_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	check_aligned(buf, n, off);
	memcpy(img + off, buf, n);
	return (ssize_t)n;
}

static int m_fstat(int fd, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0600;
	st->st_size = (off_t)IMG;
	return 0;
}

static void setup(void)
{
	if (img)
		return;
	img = aligned_alloc(WAL_BLOCK, IMG);
	lp = loop_new();
	if (!img || !lp)
		abort();
	log_set_level(LOG_ERROR);
	wal_sys.open = m_open;
	wal_sys.close = m_close;
	wal_sys.pread = m_pread;
	wal_sys.pwrite = m_pwrite;
	wal_sys.fdatasync = m_fdatasync;
	wal_sys.fstat = m_fstat;
}

/* The superblock, as docs/FORMAT.md lays it out, into slot gen % 2. */
static void put_superblock(uint64_t trim, uint64_t gen)
{
	uint8_t *p = img + (gen % 2) * WAL_BLOCK;

	memcpy(p, "SLUICWAL", 8);
	sl_store_be32(p + 8, 1);
	sl_store_be32(p + 12, WAL_BLOCK);
	sl_store_be64(p + 16, WAL_RING_START);
	sl_store_be64(p + 24, RING);
	sl_store_be64(p + 32, WAL_ID);
	sl_store_be32(p + 40, (uint32_t)ident.node);
	memcpy(p + 48, ident.cluster, strlen(ident.cluster));
	sl_store_be64(p + 112, trim);
	sl_store_be64(p + 120, gen);
	sl_store_be32(p + 128, crc32c(0, p, 128));
}

static uint8_t *ring_at(uint64_t pos)
{
	return img + WAL_RING_START + pos % RING;
}

static void ring_get(uint64_t pos, uint8_t *dst, size_t n)
{
	while (n--)
		*dst++ = *ring_at(pos++);
}

static void ring_put(uint64_t pos, const uint8_t *src, size_t n)
{
	while (n--)
		*ring_at(pos++) = *src++;
}

/* Make the records along the chain from trim valid, within limit bytes. */
static void repair_chain(uint64_t trim, uint64_t limit, uint64_t gen)
{
	uint64_t pos = trim;
	uint8_t idb[8], h[HDR], pad[WAL_BLOCK];

	sl_store_be64(idb, WAL_ID);
	while (pos - trim + HDR <= limit) {
		uint64_t room = limit - (pos - trim) - HDR;
		uint64_t len, size, i;
		uint32_t c;

		ring_get(pos, h, HDR);
		len = sl_load_be32(h + 8) % 70000;
		if (len > room)
			len = room & ~(uint64_t)7;
		size = (HDR + len + 7) & ~(uint64_t)7;
		sl_store_be32(h, 0x534c5752u);
		sl_store_be32(h + 8, (uint32_t)len);
		sl_store_be32(h + 12, 0);
		sl_store_be64(h + 16, pos);
		sl_store_be64(h + 24, sl_load_be64(h + 24) % (gen + 1));
		c = crc32c(crc32c(0, idb, 8), h, HDR);
		for (i = 0; i < size - HDR; i += sizeof(pad)) {
			size_t k = size - HDR - i < sizeof(pad) ? (size_t)(size - HDR - i) : sizeof(pad);

			ring_get(pos + HDR + i, pad, k);
			c = crc32c(c, pad, k);
		}
		sl_store_be32(h + 12, c);
		ring_put(pos, h, HDR);
		pos += size;
	}
}

struct seen {
	uint64_t pos[4096];
	uint32_t len[4096], crc[4096];
	uint8_t type[4096];
	size_t n;
	int overflow;
};

static struct seen first, second;

static void on_replay(void *arg, uint8_t type, uint64_t pos, const uint8_t *p, size_t n)
{
	struct seen *s = arg;

	if (s->n == 4096) {
		s->overflow = 1;
		return;
	}
	s->pos[s->n] = pos;
	s->len[s->n] = (uint32_t)n;
	s->crc[s->n] = crc32c(0, p, n);
	s->type[s->n] = type;
	s->n++;
}

static void on_done(void *arg, int err)
{
	*(int *)arg = err;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct wal_recovery rec;
	struct wal_op ops[3];
	int errs[3], i, napp = 0, err;
	uint8_t flags;
	uint64_t trim;
	struct wal *w;
	char why[256];

	setup();
	if (n < 9)
		return 0;
	flags = d[0];
	trim = sl_load_be64(d + 1);
	d += 9;
	n -= 9;
	memset(img, 0, IMG);
	if (flags & RAWSB) {
		size_t k = n < 2 * WAL_BLOCK ? n : 2 * WAL_BLOCK;

		memcpy(img, d, k);
		d += k;
		n -= k;
		if (flags & FIXSB) {
			sl_store_be32(img + 128, crc32c(0, img, 128));
			sl_store_be32(img + WAL_BLOCK + 128, crc32c(0, img + WAL_BLOCK, 128));
		}
		memcpy(img + WAL_RING_START, d, n < RING ? n : RING);
	} else {
		uint64_t gen = flags >> 4;

		put_superblock(trim, gen);
		ring_put(trim, d, n < RING ? n : RING);
		if (flags & CHAIN)
			repair_chain(trim, n < RING ? n : RING, gen);
	}

	memset(&first, 0, sizeof(first));
	memset(&second, 0, sizeof(second));
	w = wal_open(lp, "fuzz", &ident, &err, why, sizeof(why));
	if (!w)
		return 0;
	if (wal_recover(w, on_replay, &first, &rec) != 0) {
		wal_close(w);
		return 0;
	}
	if (rec.to < rec.from || rec.records != first.n)
		abort();
	/* Append records of sizes taken from the input, then close: they are written. */
	for (i = 0; i < 3; i++) {
		uint8_t payload[3000];
		struct wal_span sp = { payload, (size_t)(i < (int)n ? d[i] : 0) * 11 };

		memset(payload, 'a' + i, sizeof(payload));
		errs[i] = 1;
		ops[i].fn = on_done;
		ops[i].arg = &errs[i];
		if (wal_append(w, (uint8_t)(i + 1), &sp, 1, &ops[i]) != 0)
			break;
		napp++;
	}
	wal_close(w);
	for (i = 0; i < napp; i++)
		if (errs[i] != 0)
			abort();

	w = wal_open(lp, "fuzz", &ident, &err, why, sizeof(why));
	if (!w)
		abort();
	if (wal_recover(w, on_replay, &second, &rec) != 0)
		abort();
	wal_close(w);
	if (first.overflow || second.overflow)
		return 0;
	/* The second recovery replays what the first did, then the appends. */
	if (second.n < first.n + (size_t)napp)
		abort();
	for (i = 0; i < (int)first.n; i++)
		if (first.pos[i] != second.pos[i] || first.len[i] != second.len[i] ||
		    first.crc[i] != second.crc[i] || first.type[i] != second.type[i])
			abort();
	for (i = 0; i < napp; i++) {
		size_t j = first.n + (size_t)i;

		if (second.type[j] != i + 1 || second.len[j] != (uint32_t)(i < (int)n ? d[i] : 0) * 11)
			abort();
	}
	return 0;
}

#ifdef FUZZ_WAL_MAKE_SEEDS
/* Seeds from real appends: each is the ring from the trim to the head. */
static struct loop_task stop_task;
static void stop_fn(struct loop *l, void *arg) { loop_stop(l); }

static void write_seed(const char *dir, const char *name, uint8_t flags, uint64_t trim, uint64_t head)
{
	char path[512];
	uint8_t hdr[9];
	FILE *f;
	uint64_t p;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		abort();
	hdr[0] = flags;
	sl_store_be64(hdr + 1, trim);
	fwrite(hdr, 1, 9, f);
	for (p = trim; p < head; p++)
		fputc(*ring_at(p), f);
	fclose(f);
}

static void make(const char *dir, const char *name, uint64_t trim, int turns, int per, size_t size,
		 uint8_t flags)
{
	struct wal_recovery rec;
	struct wal_stats st;
	struct wal *w;
	int err, t, i;
	uint8_t payload[70000];

	memset(img, 0, IMG);
	put_superblock(trim, 2);
	w = wal_open(lp, "seed", &ident, &err, NULL, 0);
	if (!w || wal_recover(w, NULL, NULL, &rec) != 0)
		abort();
	for (t = 0; t < turns; t++) {
		for (i = 0; i < per; i++) {
			struct wal_span sp = { payload, (size + (size_t)(t * 131 + i * 17)) % sizeof(payload) };

			memset(payload, 'A' + (t + i) % 26, sizeof(payload));
			if (wal_append(w, (uint8_t)(1 + i % 3), &sp, 1, NULL) != 0)
				abort();
		}
		loop_task_init(&stop_task, stop_fn, NULL);
		loop_defer(lp, &stop_task);
		loop_run(lp);
	}
	wal_stats(w, &st);
	wal_close(w);
	/* The records' epoch is 3: the generation the recovery above wrote. */
	write_seed(dir, name, (uint8_t)(flags | 3 << 4), st.trim, st.head);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	setup();
	make(argv[1], "small-records", 0, 4, 5, 100, 0);
	make(argv[1], "block-sized", 4096 * 3, 3, 2, 4096 - 64, 0);
	make(argv[1], "wrapping", RING - 8192 + 40, 3, 2, 5000, 0);
	make(argv[1], "large-chain", 1000, 2, 1, 28000, CHAIN);
	make(argv[1], "one-commit-chain", 0, 1, 3, 700, CHAIN);
	return 0;
}
#endif
