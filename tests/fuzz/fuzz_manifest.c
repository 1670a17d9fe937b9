/*
 * fuzz_manifest.c - libFuzzer target for the manifest's decoder
 * (storage/manifest.h, docs/FORMAT.md "The manifest").
 *
 * Input:
 *   byte 0     flags: bit 0 FIXCRC - recompute each version's body length
 *              and CRC, so the fuzzer explores the operations rather than
 *              the checksum; bit 1 CHAIN - also set each delta's version,
 *              previous CRC and checkpoint to follow the state it is applied
 *              to, so mutated chains get past the version rules
 *   then       up to 16 version objects, each a big-endian u32 length and
 *              that many bytes (a length past the end takes what is left)
 *
 * The versions are applied in order to one manifest; the first failure
 * ends the input (the manifest is then only freed).  After every version
 * applied, manifest_check() must find every invariant kept.  At the end
 * the state must survive its own round trip: snapshot, apply to a fresh
 * manifest, snapshot again, the same bytes.  And the collector, given a
 * listing of every key the manifest knows, must never choose a referenced
 * object.  Any breach traps.
 *
 * Seeds (tests/fuzz/corpus/fuzz_manifest/) are versions written by a real
 * writer on a file store.  Built with -DFUZZ_MANIFEST_MAKE_SEEDS (musl, with
 * the unit tests' objects) this file is instead the program that writes
 * them, after make build/obj/tests/test_manifest:
 *
 *   objs=$(find build/obj -name '*.o' ! -name main.o)
 *   musl-gcc -std=c11 -D_GNU_SOURCE -I. -Ibuild/deps/include -static
 *     -DFUZZ_MANIFEST_MAKE_SEEDS -o build/mkseeds tests/fuzz/fuzz_manifest.c
 *     $objs build/deps/lib/libzstd.a build/deps/lib/libbearssl.a   (one line)
 *   build/mkseeds tests/fuzz/corpus/fuzz_manifest
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernel/buf.h"
#include "kernel/crc32c.h"
#include "kernel/log.h"
#include "storage/manifest.h"

enum { FIXCRC = 1, CHAIN = 2 };
#define MAX_FRAMES 16

#ifndef FUZZ_MANIFEST_MAKE_SEEDS
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void roundtrip(const struct manifest *m)
{
	struct manifest *m2;
	uint8_t *s1 = NULL, *s2 = NULL;
	size_t l1 = 0, l2 = 0;

	if (manifest_snapshot(m, &s1, &l1) != 0)
		__builtin_trap();	/* a whole version never leaves an object unreferenced */
	m2 = manifest_new();
	if (!m2 || manifest_apply(m2, s1, l1) != 0 || manifest_check(m2) != 0 ||
	    manifest_snapshot(m2, &s2, &l2) != 0 || l1 != l2 || memcmp(s1, s2, l1) != 0)
		__builtin_trap();
	free(s1);
	free(s2);
	manifest_free(m2);
}

static void collect(const struct manifest *m)
{
	struct objstore_entry *e;
	struct manifest_gc g;
	size_t i, n = 0;

	e = calloc(m->nobjects + m->nretired + 1, sizeof(*e));
	if (!e)
		return;
	for (i = 0; i < m->nobjects; i++, n++) {
		e[n].key = m->objects[i].key;
		e[n].mtime_ms = 0;
	}
	for (i = 0; i < m->nretired; i++, n++) {
		e[n].key = m->retired[i].key;
		e[n].mtime_ms = 0;
	}
	/* Every key is a "data object" here: the prefix of a key that passes the rules. */
	if (manifest_gc_plan(m, e, n, "d", INT64_MAX / 2, 0, &g) == 0) {
		for (i = 0; i < g.ndelete; i++)
			if (manifest_key_state(m, g.delete_keys[i]) == 1)
				__builtin_trap();
		manifest_gc_free(&g);
	}
	free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static int quiet;
	struct manifest *m;
	struct sl_rd r;
	uint8_t flags, *buf;
	int frames = 0, ok = 1;

	if (!quiet) {
		log_set_level(LOG_ERROR + 1);
		quiet = 1;
	}
	rd_init(&r, d, n);
	if (rd_u8(&r, &flags) != 0)
		return 0;
	m = manifest_new();
	if (!m)
		return 0;
	while (ok && rd_left(&r) > 0 && frames++ < MAX_FRAMES) {
		const uint8_t *p;
		uint32_t len;

		if (rd_u32(&r, &len) != 0)
			break;
		if (len > rd_left(&r))
			len = (uint32_t)rd_left(&r);
		if (rd_bytes(&r, len, &p) != 0)
			break;
		buf = malloc(len ? len : 1);
		if (!buf)
			break;
		memcpy(buf, p, len);
		if (len >= MANIFEST_HEADER_LEN + 4) {
			if ((flags & CHAIN) && m->version > 0) {
				sl_store_be64(buf + 16, m->version + 1);
				sl_store_be64(buf + 24, m->checkpoint);
				sl_store_be32(buf + 48, m->crc);
			}
			if (flags & (FIXCRC | CHAIN)) {
				sl_store_be32(buf + 56, len - MANIFEST_HEADER_LEN - 4);
				sl_store_be32(buf + len - 4, crc32c(0, buf, len - 4));
			}
		}
		ok = manifest_apply(m, buf, len) == 0;
		free(buf);
		if (ok && manifest_check(m) != 0)
			__builtin_trap();
	}
	if (ok && m->version > 0) {
		roundtrip(m);
		collect(m);
	}
	manifest_free(m);
	return 0;
}

#else /* FUZZ_MANIFEST_MAKE_SEEDS */

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

static struct loop *L;
static struct objstore *OS;
static char tmpdir[64];

static void on_commit(void *arg, int err, uint64_t v)
{
	if (err)
		abort();
	loop_stop(L);
}

static void commit(struct manifest *m, int64_t now)
{
	if (manifest_commit(m, OS, now, on_commit, NULL) != 0)
		abort();
	loop_run(L);
}

static void tid(uint8_t id[16], int n)
{
	memset(id, 0, 16);
	id[0] = 0x5e;
	id[15] = (uint8_t)n;
}

static uint64_t obj(struct manifest *m, const char *key, int64_t now)
{
	uint64_t id;

	if (manifest_object_add(m, key, 4096, now, &id) != 0)
		abort();
	return id;
}

static void append(struct manifest *m, int t, int32_t p, uint64_t o, int64_t first, int64_t last)
{
	struct mf_range r = { o, first, last, 1700000000000 + last, 128, 4000 };
	uint8_t id[16];

	tid(id, t);
	if (manifest_range_append(m, id, p, &r, 1000) != 0)
		abort();
}

/* Write flags and versions 1..n of the store as one seed. */
static void write_seed(const char *dir, const char *name, uint8_t flags, uint64_t from,
		       uint64_t to)
{
	char path[512];
	uint64_t v;
	FILE *out;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	out = fopen(path, "wb");
	if (!out)
		abort();
	fputc(flags, out);
	for (v = from; v <= to; v++) {
		char key[MANIFEST_KEY_LEN + 1], vp[256];
		uint8_t len[4], *b;
		FILE *f;
		long sz;

		manifest_key(v, key);
		snprintf(vp, sizeof(vp), "%s/%s", tmpdir, key);
		f = fopen(vp, "rb");
		if (!f)
			abort();
		fseek(f, 0, SEEK_END);
		sz = ftell(f);
		fseek(f, 0, SEEK_SET);
		b = malloc((size_t)sz);
		if (fread(b, 1, (size_t)sz, f) != (size_t)sz)
			abort();
		fclose(f);
		sl_store_be32(len, (uint32_t)sz);
		fwrite(len, 1, 4, out);
		fwrite(b, 1, (size_t)sz, out);
		free(b);
	}
	fclose(out);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

int main(int argc, char **argv)
{
	static const struct mf_config cf[] = { { "retention.ms", "604800000" },
					       { "segment.bytes", NULL } };
	struct mf_offset o = { "group-1", "orders", 0, 42, 3, "m", 5000, -1 };
	struct manifest_policy pol = { 3, 0 };
	struct manifest *m;
	struct mf_range r;
	uint8_t id[16];
	char url[128], errbuf[128];
	uint64_t a, b, c;

	if (argc != 2)
		return 2;
	log_set_level(LOG_ERROR);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fuzz-manifest-XXXXXX");
	if (!mkdtemp(tmpdir))
		abort();
	L = loop_new();
	snprintf(url, sizeof(url), "file://%s", tmpdir);
	if (objstore_open(L, url, NULL, &OS, errbuf, sizeof(errbuf)) != 0)
		abort();
	m = manifest_new();
	if (manifest_set_cluster(m, "fuzz-cluster") != 0 || manifest_writer_start(m, 1, &pol) != 0)
		abort();
	/* v1: a checkpoint of a little of everything */
	tid(id, 1);
	if (manifest_topic_put(m, id, "orders", 2, cf, 2) != 0)
		abort();
	tid(id, 2);
	if (manifest_topic_put(m, id, "audit", 1, NULL, 0) != 0)
		abort();
	a = obj(m, "data/0000000001", 1000);
	append(m, 1, 0, a, 0, 99);
	append(m, 1, 1, a, 0, 9);
	append(m, 2, 0, a, 0, 4);
	b = obj(m, "data/0000000002", 1100);
	append(m, 1, 0, b, 100, 149);
	if (manifest_offset_commit(m, &o) != 0 || manifest_producers_set(m, 1, "pstate", 6) != 0)
		abort();
	commit(m, 2000);
	/* v2: a delta: more data, retention, compaction, offsets */
	c = obj(m, "data/0000000003", 2100);
	append(m, 1, 0, c, 150, 199);
	append(m, 1, 1, c, 10, 19);
	tid(id, 1);
	if (manifest_log_start(m, id, 1, 12, 2200) != 0)
		abort();
	a = obj(m, "data/0000000004", 2300);
	memset(&r, 0, sizeof(r));
	r.object = a;
	r.first = 100;
	r.last = 199;
	r.max_ts = -1;
	if (manifest_range_replace(m, id, 0, &r, 2300) != 0)
		abort();
	o.offset = 150;
	o.partition = 1;
	if (manifest_offset_commit(m, &o) != 0 || manifest_offset_delete(m, "group-1", "orders", 0) != 0)
		abort();
	commit(m, 3000);
	/* v3: topic deletion, forgetting, a group gone, producers changed (v4 is a checkpoint) */
	tid(id, 2);
	if (manifest_topic_delete(m, id, 3100) != 0 || manifest_group_delete(m, "group-1") != 0 ||
	    manifest_producers_set(m, 2, "", 0) != 0)
		abort();
	tid(id, 3);
	if (manifest_topic_put(m, id, "audit", 4, cf, 1) != 0)
		abort();
	commit(m, 4000);
	if (manifest_forget(m, "data/0000000002") != 0)
		abort();
	commit(m, 5000);
	write_seed(argv[1], "checkpoint", 0, 1, 1);
	write_seed(argv[1], "checkpoint-delta", 0, 1, 2);
	write_seed(argv[1], "three-versions-fixed", FIXCRC | CHAIN, 1, 3);
	write_seed(argv[1], "later-checkpoint", FIXCRC, 4, 4);
	manifest_free(m);
	objstore_free(OS);
	loop_destroy(L);
	nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}
#endif
