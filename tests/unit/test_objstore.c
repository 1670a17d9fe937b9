/*
 * test_objstore.c - the object store: the file backend in a temporary
 * directory, and the s3 backend against a small fake S3 on loopback.
 *
 * File backend: round trips, ranges, nested keys, listing (sorted, by
 * prefix, temporary and foreign files hidden, the cap), deletes, the key
 * rules, put_if_absent (the same bytes again count as success, others are
 * SL_E_EXISTS) also between two stores on one directory, and atomic
 * writes: the syscall table (objstore_file_sys) records the order of a put
 * (the temporary file is fsynced before it is renamed or linked, the
 * directory after) and injects failures (a write that stops half way, a
 * failed fsync, rename or link, and a "crash" that leaves the temporary file
 * behind): the key keeps its old bytes every time.  The I/O thread: two
 * stores on one directory race with their own threads; cancelling a queued
 * operation (never runs), a running one (the cancel waits for it; a test
 * thread releases a write held in the syscall table), a finished one, and
 * one from another operation's callback; freeing with operations pending.
 *
 * s3 backend: the fake keeps objects in memory and speaks PUT (honouring
 * If-None-Match: * with 412, as AWS does; s3rver ignores that header, which
 * is why the conditional write is tested here and not against s3rver), GET
 * with Range, HEAD, DELETE, DeleteObjects and ListObjectsV2.  A script of
 * faults for PUTs makes it answer 409 ConditionalRequestConflict, or do the
 * work and close before answering ("lost": the retry meets 412 and the
 * store reads the object back to find its own bytes), or store another
 * writer's bytes and close ("steal": the read-back finds other bytes).
 * Signatures are not checked here; test_s3.c does that.
 *
 * Every test checks that no callback runs from inside a call, and runs the
 * loop under a 20 s guard timer.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "t.h"
#include "../../kernel/log.h"
#include "../../storage/objstore.h"

static struct loop *L;
static struct objstore *OS;
static int outstanding, in_call, called_inside, guard_fired;
static struct loop_timer guard;
static char dirpath[256];

/* ---- the harness ---- */

struct call {
	int done;
	int err, status, attempts;
	char code[64], message[128];
	uint8_t *body;
	size_t body_len;
	uint64_t size;
	int64_t mtime_ms;
	size_t nentries, ndeleted, nkey_errors;
	char keys[32][128];
	uint64_t sizes[32];
	char kerr_key[128];
};

static void on_guard(struct loop *l, void *arg)
{
	guard_fired = 1;
	loop_stop(l);
}

static void on_done(void *arg, struct objstore_result *r)
{
	struct call *c = arg;
	size_t i;

	if (in_call)
		called_inside++;
	c->done++;
	c->err = r->err;
	c->status = r->status;
	c->attempts = r->attempts;
	snprintf(c->code, sizeof(c->code), "%s", r->code);
	snprintf(c->message, sizeof(c->message), "%s", r->message);
	c->body = objstore_result_take_body(r, &c->body_len);
	c->size = r->size;
	c->mtime_ms = r->mtime_ms;
	c->nentries = r->nentries;
	for (i = 0; i < r->nentries && i < 32; i++) {
		snprintf(c->keys[i], sizeof(c->keys[i]), "%s", r->entries[i].key);
		c->sizes[i] = r->entries[i].size;
	}
	c->ndeleted = r->ndeleted;
	c->nkey_errors = r->nkey_errors;
	if (r->nkey_errors)
		snprintf(c->kerr_key, sizeof(c->kerr_key), "%s", r->key_errors[0].key);
	if (--outstanding == 0)
		loop_stop(L);
}

static void run(void)
{
	if (outstanding > 0)
		T_EQ(loop_run(L), 0);
	T_EQ(outstanding, 0);
	T_EQ(guard_fired, 0);
	T_EQ(called_inside, 0);
}

static void call_reset(struct call *c)
{
	free(c->body);
	memset(c, 0, sizeof(*c));
}

/* Each helper starts one operation and expects the start to succeed. */
static void put(const char *key, const void *p, size_t n, struct call *c)
{
	call_reset(c);
	in_call = 1;
	T_EQ(objstore_put(OS, key, p, n, on_done, c, NULL), 0);
	in_call = 0;
	outstanding++;
}

static void put_new(const char *key, const void *p, size_t n, struct call *c)
{
	call_reset(c);
	in_call = 1;
	T_EQ(objstore_put_if_absent(OS, key, p, n, on_done, c, NULL), 0);
	in_call = 0;
	outstanding++;
}

static void get(const char *key, const struct objstore_range *rg, struct call *c)
{
	call_reset(c);
	in_call = 1;
	T_EQ(objstore_get(OS, key, rg, on_done, c, NULL), 0);
	in_call = 0;
	outstanding++;
}

static void head(const char *key, struct call *c)
{
	call_reset(c);
	in_call = 1;
	T_EQ(objstore_head(OS, key, on_done, c, NULL), 0);
	in_call = 0;
	outstanding++;
}

static void del(const char *key, struct call *c)
{
	call_reset(c);
	in_call = 1;
	T_EQ(objstore_delete(OS, key, on_done, c, NULL), 0);
	in_call = 0;
	outstanding++;
}

static void list(const char *prefix, struct call *c)
{
	call_reset(c);
	in_call = 1;
	T_EQ(objstore_list(OS, prefix, on_done, c, NULL), 0);
	in_call = 0;
	outstanding++;
}

/* Synchronous forms for setting up and checking. */
static int sync_put(const char *key, const char *s)
{
	struct call c = { 0 };

	put(key, s, strlen(s), &c);
	run();
	return c.err;
}

/* The object's bytes as a string ("<err N>" when the get fails). */
static const char *sync_get(const char *key)
{
	static char out[512];
	struct call c = { 0 };

	get(key, NULL, &c);
	run();
	if (c.err == SL_E_NOTFOUND)
		snprintf(out, sizeof(out), "<missing>");
	else if (c.err)
		snprintf(out, sizeof(out), "<err %d>", c.err);
	else
		snprintf(out, sizeof(out), "%.*s", (int)c.body_len, c.body ? (char *)c.body : "");
	call_reset(&c);
	return out;
}

static void guard_start(void)
{
	outstanding = 0;
	guard_fired = 0;
	called_inside = 0;
	in_call = 0;
	loop_timer_init(&guard, on_guard, NULL);
	loop_timer_set(L, &guard, 20000);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void file_setup(void)
{
	char url[300], errbuf[256];

	snprintf(dirpath, sizeof(dirpath), "/tmp/sluice-objstore-XXXXXX");
	T_CHECK(mkdtemp(dirpath) != NULL);
	L = loop_new();
	snprintf(url, sizeof(url), "file://%s", dirpath);
	T_EQ(objstore_open(L, url, NULL, &OS, errbuf, sizeof(errbuf)), 0);
	T_EQ(objstore_kind(OS), OBJSTORE_FILE);
	guard_start();
}

static void file_teardown(void)
{
	objstore_file_sys_reset();
	objstore_free(OS);
	OS = NULL;
	loop_timer_cancel(L, &guard);
	loop_destroy(L);
	L = NULL;
	nftw(dirpath, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Files in dirpath/sub whose names start with ".tmp-". */
static int count_tmp(const char *sub)
{
	char p[400];
	DIR *d;
	struct dirent *de;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", dirpath, sub);
	d = opendir(p);
	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, ".tmp-", 5) == 0)
			n++;
	closedir(d);
	return n;
}

/* ---- file backend ---- */

static void test_key_rules(void)
{
	static const char *good[] = { "a", "manifest/00000000000000000001", "data/x-y_z.obj",
				      "a=b+c", "a.b/c.d" };
	static const char *bad[] = { "", "/a", "a/", "a//b", ".a", "a/.b", "a/..", "..", "a b",
				     "a\nb", "a:b", "é" };
	char longkey[OBJSTORE_KEY_MAX + 2];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		T_EQ(objstore_key_check(good[i]), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		T_EQ(objstore_key_check(bad[i]), SL_E_INVALID);
	memset(longkey, 'k', sizeof(longkey));
	longkey[OBJSTORE_KEY_MAX] = '\0';
	T_EQ(objstore_key_check(longkey), 0);
	longkey[OBJSTORE_KEY_MAX] = 'k';
	longkey[OBJSTORE_KEY_MAX + 1] = '\0';
	T_EQ(objstore_key_check(longkey), SL_E_INVALID);
	/* Prefixes may be empty, end with '/' or inside a segment. */
	T_EQ(objstore_prefix_check(""), 0);
	T_EQ(objstore_prefix_check(NULL), 0);
	T_EQ(objstore_prefix_check("manifest/"), 0);
	T_EQ(objstore_prefix_check("manifest/000"), 0);
	T_EQ(objstore_prefix_check("/x"), SL_E_INVALID);
	T_EQ(objstore_prefix_check("a//"), SL_E_INVALID);
	T_EQ(objstore_prefix_check("a/."), SL_E_INVALID);

	/* A bad key is refused at once, with no callback. */
	file_setup();
	{
		struct call c = { 0 };

		T_EQ(objstore_put(OS, "../escape", "x", 1, on_done, &c, NULL), SL_E_INVALID);
		T_EQ(objstore_get(OS, "/etc/passwd", NULL, on_done, &c, NULL), SL_E_INVALID);
		T_EQ(objstore_list(OS, "../", on_done, &c, NULL), SL_E_INVALID);
		T_EQ(objstore_put(OS, "k", NULL, 1, on_done, &c, NULL), SL_E_INVALID);
		T_EQ(objstore_put(OS, "k", "x", 1, NULL, &c, NULL), SL_E_INVALID);
		T_EQ(c.done, 0);
	}
	file_teardown();
}

static void test_file_roundtrip(void)
{
	struct call c[4] = { { 0 } };
	static const char data[] = "0123456789abcdef";
	struct objstore_range r;
	int64_t now = loop_wall_ms();
	struct stat st;
	char p[400];

	file_setup();
	put("data/00/obj1", data, 16, &c[0]);
	put("empty", NULL, 0, &c[1]);
	run();
	T_EQ(c[0].err, 0);
	T_EQ(c[0].size, 16);
	T_EQ(c[0].attempts, 1);
	T_EQ(c[1].err, 0);
	/* The key's '/' are directories; the object is a plain file. */
	snprintf(p, sizeof(p), "%s/data/00/obj1", dirpath);
	T_EQ(stat(p, &st), 0);
	T_EQ(st.st_size, 16);

	get("data/00/obj1", NULL, &c[0]);
	head("data/00/obj1", &c[1]);
	get("empty", NULL, &c[2]);
	run();
	T_EQ(c[0].err, 0);
	T_EQ(c[0].body_len, 16);
	T_CHECK(c[0].body && memcmp(c[0].body, data, 16) == 0);
	T_EQ(c[1].err, 0);
	T_EQ(c[1].size, 16);
	T_CHECK(c[1].mtime_ms >= now - 5000 && c[1].mtime_ms <= now + 60000);
	T_EQ(c[2].err, 0);
	T_EQ(c[2].body_len, 0);
	T_CHECK(c[2].body == NULL);

	/* Ranges: inside, running past the end (cut), starting past the end. */
	r.first = 4;
	r.last = 7;
	get("data/00/obj1", &r, &c[0]);
	run();
	T_EQ(c[0].err, 0);
	T_EQ(c[0].body_len, 4);
	T_CHECK(c[0].body && memcmp(c[0].body, "4567", 4) == 0);
	r.first = 14;
	r.last = 1000;
	get("data/00/obj1", &r, &c[0]);
	run();
	T_EQ(c[0].err, 0);
	T_EQ(c[0].body_len, 2);
	T_CHECK(c[0].body && memcmp(c[0].body, "ef", 2) == 0);
	r.first = 16;
	r.last = 20;
	get("data/00/obj1", &r, &c[0]);
	r.first = 0;
	r.last = 0;
	get("empty", &r, &c[1]);
	run();
	T_EQ(c[0].err, SL_E_INVALID);
	T_CHECK(c[0].body == NULL);
	T_EQ(c[1].err, SL_E_INVALID);
	r.first = 5;
	r.last = 4;
	T_EQ(objstore_get(OS, "empty", &r, on_done, &c[0], NULL), SL_E_INVALID);

	/* Missing keys, and a "directory" that is not an object. */
	get("nope", NULL, &c[0]);
	head("nope/deeper", &c[1]);
	get("data/00", NULL, &c[2]);
	head("data", &c[3]);
	run();
	T_EQ(c[0].err, SL_E_NOTFOUND);
	T_EQ(c[1].err, SL_E_NOTFOUND);
	T_EQ(c[2].err, SL_E_NOTFOUND);
	T_EQ(c[3].err, SL_E_NOTFOUND);

	/* put replaces. */
	T_EQ(sync_put("data/00/obj1", "new"), 0);
	T_STR_EQ(sync_get("data/00/obj1"), "new");
	for (int i = 0; i < 4; i++)
		call_reset(&c[i]);
	file_teardown();
}

static void test_file_put_if_absent(void)
{
	struct call c[2] = { { 0 } };

	file_setup();
	put_new("manifest/00000000000000000001", "first", 5, &c[0]);
	run();
	T_EQ(c[0].err, 0);
	T_EQ(c[0].size, 5);
	put_new("manifest/00000000000000000001", "second", 6, &c[1]);
	run();
	T_EQ(c[1].err, SL_E_EXISTS);
	T_STR_EQ(sync_get("manifest/00000000000000000001"), "first");
	T_EQ(count_tmp("manifest"), 0);
	/* The same bytes again: a repeat of a put whose outcome was unknown. */
	put_new("manifest/00000000000000000001", "first", 5, &c[1]);
	run();
	T_EQ(c[1].err, 0);
	put_new("manifest/00000000000000000001", "firsT", 5, &c[1]);
	run();
	T_EQ(c[1].err, SL_E_EXISTS);
	T_EQ(count_tmp("manifest"), 0);
	/* A plain put still replaces; after a delete the key is free again. */
	T_EQ(sync_put("manifest/00000000000000000001", "third"), 0);
	del("manifest/00000000000000000001", &c[0]);
	run();
	T_EQ(c[0].err, 0);
	put_new("manifest/00000000000000000001", "fourth", 6, &c[1]);
	run();
	T_EQ(c[1].err, 0);
	T_STR_EQ(sync_get("manifest/00000000000000000001"), "fourth");
	call_reset(&c[0]);
	call_reset(&c[1]);
	file_teardown();
}

/* Two stores (two brokers) on one directory race to create the same key. */
static void test_file_two_writers(void)
{
	struct objstore *other;
	struct call c[2] = { { 0 } };
	char url[300], errbuf[128];
	int v;

	file_setup();
	snprintf(url, sizeof(url), "file://%s", dirpath);
	T_EQ(objstore_open(L, url, NULL, &other, errbuf, sizeof(errbuf)), 0);
	for (v = 1; v <= 20; v++) {
		char key[64], a[16], b[16];

		snprintf(key, sizeof(key), "manifest/%020d", v);
		snprintf(a, sizeof(a), "A%d", v);
		snprintf(b, sizeof(b), "B%d", v);
		/* Alternate who starts first: exactly one wins each version. */
		call_reset(&c[0]);
		call_reset(&c[1]);
		if (v % 2) {
			T_EQ(objstore_put_if_absent(OS, key, a, strlen(a), on_done, &c[0], NULL), 0);
			T_EQ(objstore_put_if_absent(other, key, b, strlen(b), on_done, &c[1], NULL), 0);
		} else {
			T_EQ(objstore_put_if_absent(other, key, b, strlen(b), on_done, &c[1], NULL), 0);
			T_EQ(objstore_put_if_absent(OS, key, a, strlen(a), on_done, &c[0], NULL), 0);
		}
		outstanding += 2;
		run();
		/* Each store has its own I/O thread: either may win, never both. */
		T_EQ((c[0].err == 0) + (c[1].err == 0), 1);
		T_EQ((c[0].err == SL_E_EXISTS) + (c[1].err == SL_E_EXISTS), 1);
		T_STR_EQ(sync_get(key), c[0].err == 0 ? a : b);
	}
	objstore_free(other);
	file_teardown();
}

static void test_file_list(void)
{
	struct call c = { 0 };
	static const char *keys[] = { "manifest/00000000000000000002", "data/b/2", "data/a/1",
				      "manifest/00000000000000000010", "data/a/10", "data/ab",
				      "top" };
	char p[400];
	size_t i;
	int fd;

	file_setup();
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		T_EQ(sync_put(keys[i], keys[i]), 0);
	/* Not objects: a temporary file, a dot file, a name outside the rules. */
	snprintf(p, sizeof(p), "%s/data/a/.tmp-1-2-3", dirpath);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	T_CHECK(fd >= 0);
	close(fd);
	snprintf(p, sizeof(p), "%s/data/a/bad name", dirpath);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	T_CHECK(fd >= 0);
	close(fd);

	list("", &c);
	run();
	T_EQ(c.err, 0);
	T_EQ(c.nentries, 7);
	T_STR_EQ(c.keys[0], "data/a/1");
	T_STR_EQ(c.keys[1], "data/a/10");
	T_STR_EQ(c.keys[2], "data/ab");
	T_STR_EQ(c.keys[3], "data/b/2");
	T_STR_EQ(c.keys[4], "manifest/00000000000000000002");
	T_STR_EQ(c.keys[5], "manifest/00000000000000000010");
	T_STR_EQ(c.keys[6], "top");
	T_EQ(c.sizes[6], 3);

	list("data/a", &c);		/* inside a segment: data/a/... and data/ab */
	run();
	T_EQ(c.nentries, 3);
	T_STR_EQ(c.keys[2], "data/ab");
	list("data/a/", &c);
	run();
	T_EQ(c.nentries, 2);
	list("manifest/", &c);
	run();
	T_EQ(c.nentries, 2);
	T_STR_EQ(c.keys[1], "manifest/00000000000000000010");
	list("manifest/0000000000000000001", &c);
	run();
	T_EQ(c.nentries, 1);
	list("nothing/", &c);
	run();
	T_EQ(c.err, 0);
	T_EQ(c.nentries, 0);
	list("top/", &c);		/* a file where a directory would be */
	run();
	T_EQ(c.err, 0);
	T_EQ(c.nentries, 0);
	call_reset(&c);
	objstore_free(OS);

	/* The cap on a listing. */
	{
		struct objstore_options o = { 0 };
		char url[300], errbuf[128];

		o.max_list = 3;
		snprintf(url, sizeof(url), "file://%s", dirpath);
		T_EQ(objstore_open(L, url, &o, &OS, errbuf, sizeof(errbuf)), 0);
		list("", &c);
		run();
		T_EQ(c.err, SL_E_TOOBIG);
		T_EQ(c.nentries, 0);
		list("manifest/", &c);
		run();
		T_EQ(c.err, 0);
		T_EQ(c.nentries, 2);
	}
	file_teardown();
}

static int fail_unlink_errno;
static int t_unlink(const char *path)
{
	if (fail_unlink_errno && strstr(path, "locked")) {
		errno = fail_unlink_errno;
		return -1;
	}
	return unlink(path);
}

static void test_file_delete(void)
{
	struct call c = { 0 };
	const char *keys[] = { "d/1", "d/2", "d/missing", "d/locked" };

	file_setup();
	T_EQ(sync_put("d/1", "1"), 0);
	T_EQ(sync_put("d/2", "2"), 0);
	T_EQ(sync_put("d/locked", "x"), 0);
	del("d/1", &c);
	run();
	T_EQ(c.err, 0);
	T_STR_EQ(sync_get("d/1"), "<missing>");
	del("d/1", &c);			/* already gone: still a success */
	run();
	T_EQ(c.err, 0);
	del("d", &c);			/* a directory is not an object */
	run();
	T_EQ(c.err, 0);

	objstore_file_sys.unlink = t_unlink;
	fail_unlink_errno = EACCES;
	call_reset(&c);
	in_call = 1;
	T_EQ(objstore_delete_many(OS, keys, 4, on_done, &c, NULL), 0);
	in_call = 0;
	outstanding++;
	run();
	T_EQ(c.err, 0);
	T_EQ(c.ndeleted, 3);
	T_EQ(c.nkey_errors, 1);
	T_STR_EQ(c.kerr_key, "d/locked");
	T_STR_EQ(sync_get("d/2"), "<missing>");
	T_STR_EQ(sync_get("d/locked"), "x");
	T_EQ(objstore_delete_many(OS, keys, 0, on_done, &c, NULL), SL_E_INVALID);
	fail_unlink_errno = 0;
	call_reset(&c);
	file_teardown();
}

/* ---- the syscall table: order and faults ---- */

enum { FD_OTHER, FD_TMP, FD_DIR };
static char trace[256];
static int fdkind[1024];
static int fault;		/* which step fails, below */
static int crash;		/* a failure that leaves everything as it is (no cleanup) */
static int writes;

enum { F_NONE, F_HALF_WRITE, F_FSYNC, F_RENAME, F_LINK, F_DIRSYNC, F_MKDIR };

static void tr(char ch)
{
	size_t n = strlen(trace);

	if (n + 1 < sizeof(trace)) {
		trace[n] = ch;
		trace[n + 1] = '\0';
	}
}

static int t_open(const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags, mode);

	if (fd >= 0 && fd < 1024) {
		fdkind[fd] = strstr(path, "/.tmp-") ? FD_TMP : (flags & O_DIRECTORY) ? FD_DIR : FD_OTHER;
		if (fdkind[fd] == FD_TMP)
			tr('O');
	}
	return fd;
}

static ssize_t t_write(int fd, const void *buf, size_t n)
{
	writes++;
	if (fault == F_HALF_WRITE && writes == 2) {
		errno = EIO;
		return -1;
	}
	if (fault == F_HALF_WRITE && n > 1)
		n /= 2;		/* the first write is short: the rest never comes */
	tr('W');
	return write(fd, buf, n);
}

static int t_fsync(int fd)
{
	int k = fd >= 0 && fd < 1024 ? fdkind[fd] : FD_OTHER;

	if ((fault == F_FSYNC && k == FD_TMP) || (fault == F_DIRSYNC && k == FD_DIR)) {
		errno = EIO;
		return -1;
	}
	tr(k == FD_TMP ? 'F' : k == FD_DIR ? 'D' : '?');
	return fsync(fd);
}

static int t_close(int fd)
{
	if (fd >= 0 && fd < 1024 && fdkind[fd] == FD_TMP)
		tr('C');
	if (fd >= 0 && fd < 1024)
		fdkind[fd] = FD_OTHER;
	return close(fd);
}

static int t_rename(const char *a, const char *b)
{
	int rc;

	if (fault == F_RENAME) {
		errno = EIO;
		return -1;
	}
	rc = rename(a, b);
	if (rc == 0)
		tr('R');
	return rc;
}

static int t_link(const char *a, const char *b)
{
	int rc;

	if (fault == F_LINK) {
		errno = EIO;
		return -1;
	}
	rc = link(a, b);
	if (rc == 0)
		tr('L');
	return rc;
}

static int t_unlink2(const char *p)
{
	if (crash)
		return 0;	/* the process died: nothing is cleaned up */
	tr('U');
	return unlink(p);
}

static int t_mkdir(const char *p, mode_t m)
{
	if (fault == F_MKDIR) {
		errno = ENOSPC;
		return -1;
	}
	tr('M');
	return mkdir(p, m);
}

static void trace_on(void)
{
	trace[0] = '\0';
	fault = F_NONE;
	crash = 0;
	writes = 0;
	objstore_file_sys.open = t_open;
	objstore_file_sys.write = t_write;
	objstore_file_sys.fsync = t_fsync;
	objstore_file_sys.close = t_close;
	objstore_file_sys.rename = t_rename;
	objstore_file_sys.link = t_link;
	objstore_file_sys.unlink = t_unlink2;
	objstore_file_sys.mkdir = t_mkdir;
}

static void test_file_write_order(void)
{
	struct call c = { 0 };

	file_setup();
	trace_on();
	/* A new directory is made and fsynced into its parent first. */
	T_EQ(sync_put("new/obj", "hello"), 0);
	T_STR_EQ(trace, "MDOWFCRD");
	trace[0] = '\0';
	T_EQ(sync_put("new/obj", "again"), 0);
	T_STR_EQ(trace, "OWFCRD");
	trace[0] = '\0';
	put_new("new/v1", "v", 1, &c);
	run();
	T_EQ(c.err, 0);
	T_STR_EQ(trace, "OWFCLUD");
	/* Losing the race: the temporary file goes, the directory is untouched. */
	trace[0] = '\0';
	put_new("new/v1", "w", 1, &c);
	run();
	T_EQ(c.err, SL_E_EXISTS);
	T_STR_EQ(trace, "OWFCU");
	T_EQ(count_tmp("new"), 0);
	call_reset(&c);
	file_teardown();
}

static void test_file_faults(void)
{
	static const struct { int fault, crash, excl, err; } cases[] = {
		{ F_HALF_WRITE, 0, 0, -EIO },
		{ F_HALF_WRITE, 1, 0, -EIO },
		{ F_FSYNC, 0, 0, -EIO },
		{ F_FSYNC, 1, 1, -EIO },
		{ F_RENAME, 0, 0, -EIO },
		{ F_RENAME, 1, 0, -EIO },
		{ F_LINK, 0, 1, -EIO },
		{ F_LINK, 1, 1, -EIO },
	};
	static char big[100000];
	struct call c = { 0 };
	size_t i;

	memset(big, 'n', sizeof(big));
	file_setup();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *key = cases[i].excl ? "k/fresh" : "k/obj";

		objstore_file_sys_reset();
		T_EQ(sync_put("k/obj", "old"), 0);
		trace_on();
		fault = cases[i].fault;
		crash = cases[i].crash;
		if (cases[i].excl)
			put_new(key, big, sizeof(big), &c);
		else
			put(key, big, sizeof(big), &c);
		run();
		T_EQ(c.err, cases[i].err);
		objstore_file_sys_reset();
		/* Never a half object under the final name. */
		T_STR_EQ(sync_get("k/obj"), "old");
		T_STR_EQ(sync_get("k/fresh"), "<missing>");
		/* A clean failure removes its temporary file; a crash leaves it, hidden. */
		T_EQ(count_tmp("k"), cases[i].crash ? 1 : 0);
		{
			struct call lc = { 0 };

			list("k/", &lc);
			run();
			T_EQ(lc.nentries, 1);
			T_STR_EQ(lc.keys[0], "k/obj");
			call_reset(&lc);
		}
		if (cases[i].crash) {
			char p[400];
			DIR *d;
			struct dirent *de;

			snprintf(p, sizeof(p), "%s/k", dirpath);
			d = opendir(p);
			while (d && (de = readdir(d)) != NULL) {
				if (strncmp(de->d_name, ".tmp-", 5) == 0) {
					char f[700];

					snprintf(f, sizeof(f), "%s/%s", p, de->d_name);
					unlink(f);
				}
			}
			if (d)
				closedir(d);
		}
	}
	/* The directory fsync failing after the rename: the put reports it. */
	trace_on();
	fault = F_DIRSYNC;
	put("k/obj", "new", 3, &c);
	run();
	T_EQ(c.err, -EIO);
	/* A directory that cannot be made. */
	fault = F_MKDIR;
	put("other/obj", "x", 1, &c);
	run();
	T_EQ(c.err, -ENOSPC);
	objstore_file_sys_reset();
	T_STR_EQ(sync_get("other/obj"), "<missing>");
	/* A key whose "directory" is an object. */
	put("k/obj/inner", "x", 1, &c);
	run();
	T_EQ(c.err, -ENOTDIR);
	call_reset(&c);
	file_teardown();
}

/* The I/O thread stops in a write until the test lets it go. */
static int hold_writes, writing;
static ssize_t t_hold_write(int fd, const void *buf, size_t n)
{
	struct timespec ts = { 0, 1000000 };

	__atomic_store_n(&writing, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&hold_writes, __ATOMIC_SEQ_CST))
		nanosleep(&ts, NULL);
	return write(fd, buf, n);
}

static void wait_writing(void)
{
	struct timespec ts = { 0, 1000000 };

	while (!__atomic_load_n(&writing, __ATOMIC_SEQ_CST))
		nanosleep(&ts, NULL);
}

static void *release_later(void *arg)
{
	struct timespec ts = { 0, 20000000 };

	nanosleep(&ts, NULL);
	__atomic_store_n(&hold_writes, 0, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_file_cancel_free(void)
{
	struct call c[4] = { { 0 } };
	struct objstore_op *op[4] = { NULL };
	pthread_t thr;

	file_setup();
	/* A put running on the I/O thread, a put and a get queued behind it. */
	objstore_file_sys.write = t_hold_write;
	__atomic_store_n(&hold_writes, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&writing, 0, __ATOMIC_SEQ_CST);
	T_EQ(objstore_put(OS, "a", "1", 1, on_done, &c[0], &op[0]), 0);
	wait_writing();
	T_EQ(objstore_put(OS, "b", "2", 1, on_done, &c[1], &op[1]), 0);
	T_EQ(objstore_get(OS, "a", NULL, on_done, &c[2], &op[2]), 0);
	/* Queued: gone at once, never run.  Running: the cancel waits for it. */
	objstore_cancel(OS, op[1]);
	T_EQ(pthread_create(&thr, NULL, release_later, NULL), 0);
	objstore_cancel(OS, op[0]);
	pthread_join(thr, NULL);
	outstanding = 1;
	run();
	T_EQ(c[0].done, 0);
	T_EQ(c[1].done, 0);
	T_EQ(c[2].done, 1);
	T_EQ(c[2].err, 0);		/* the running put had taken effect */
	T_STR_EQ(sync_get("b"), "<missing>");
	objstore_file_sys_reset();
	/* Finished (most likely) but not yet called back: cancelled, no callback. */
	T_EQ(objstore_put(OS, "c", "3", 1, on_done, &c[3], &op[3]), 0);
	{
		struct timespec ts = { 0, 20000000 };

		nanosleep(&ts, NULL);
	}
	objstore_cancel(OS, op[3]);
	T_STR_EQ(sync_get("c"), "3");
	T_EQ(c[3].done, 0);
	/* Freeing the store ends what is pending with SL_E_CLOSED. */
	call_reset(&c[1]);
	call_reset(&c[2]);
	T_EQ(objstore_get(OS, "a", NULL, on_done, &c[1], NULL), 0);
	T_EQ(objstore_list(OS, "", on_done, &c[2], NULL), 0);
	outstanding += 2;
	objstore_free(OS);
	OS = NULL;
	T_EQ(c[1].done, 1);
	T_EQ(c[1].err, SL_E_CLOSED);
	T_CHECK(c[1].body == NULL);
	T_EQ(c[2].done, 1);
	T_EQ(c[2].err, SL_E_CLOSED);
	T_EQ(c[2].nentries, 0);
	outstanding = 0;
	for (int i = 0; i < 4; i++)
		call_reset(&c[i]);
	file_teardown();
}

/*
 * A callback cancels a later operation: it is never called back, wherever
 * it was (queued, running, finished, or finished in the same batch, which
 * the pause before the loop runs makes the usual case).
 */
static struct objstore_op *victim;
static void on_done_cancel(void *arg, struct objstore_result *r)
{
	on_done(arg, r);
	objstore_cancel(OS, victim);
	if (--outstanding == 0)		/* the victim's callback never comes */
		loop_stop(L);
}

static void test_file_cancel_in_callback(void)
{
	struct timespec ts = { 0, 20000000 };
	struct call c[2] = { { 0 } };

	file_setup();
	T_EQ(objstore_put(OS, "x", "1", 1, on_done_cancel, &c[0], NULL), 0);
	T_EQ(objstore_put(OS, "y", "2", 1, on_done, &c[1], &victim), 0);
	outstanding = 2;
	nanosleep(&ts, NULL);
	run();
	T_EQ(c[0].done, 1);
	T_EQ(c[1].done, 0);
	call_reset(&c[0]);
	file_teardown();
}

static void test_open_errors(void)
{
	struct objstore *os = NULL;
	struct objstore_options o = { 0 };
	char url[400], errbuf[256], p[300];
	int fd;

	file_setup();
	snprintf(url, sizeof(url), "file://%s/missing", dirpath);
	T_EQ(objstore_open(L, url, NULL, &os, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_CHECK(strstr(errbuf, "No such file") != NULL);
	T_CHECK(os == NULL);
	o.create_dir = 1;
	T_EQ(objstore_open(L, url, &o, &os, errbuf, sizeof(errbuf)), 0);
	T_CHECK(os != NULL);
	T_STR_EQ(objstore_name(os) + strlen(objstore_name(os)) - 8, "/missing");
	objstore_free(os);
	os = NULL;
	/* Only the last component is made. */
	snprintf(url, sizeof(url), "file://%s/x/y", dirpath);
	T_EQ(objstore_open(L, url, &o, &os, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	snprintf(p, sizeof(p), "%s/plain", dirpath);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	close(fd);
	snprintf(url, sizeof(url), "file://%s", p);
	T_EQ(objstore_open(L, url, NULL, &os, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_CHECK(strstr(errbuf, "not a directory") != NULL);
	T_EQ(objstore_open(L, "file://relative", NULL, &os, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	T_EQ(objstore_open(L, "ftp://x", NULL, &os, errbuf, sizeof(errbuf)), SL_E_CONFIG);
	file_teardown();
}

/* ---- the fake S3 ---- */

#define BUCKET "bkt"

struct fobj {
	char key[600];
	uint8_t *data;
	size_t len;
};

struct fconn {
	int fd;
	int closed;
	uint8_t *in;
	size_t len, cap;
	struct fconn *next;
};

static struct {
	int lfd;
	uint16_t port;
	struct fconn *conns;
	struct fobj objs[128];
	int nobjs;
	char script[16][16];	/* actions for the next PUTs, in order */
	int nscript;
	int puts, gets, inm_puts, lists, deletes;
} F;

static void c_send(struct fconn *fc, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = send(fc->fd, b, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;	/* small answers only: the socket buffer holds them */
		b += w;
		n -= (size_t)w;
	}
}

static void c_close(struct fconn *fc)
{
	if (fc->closed)
		return;
	loop_del(L, fc->fd);
	close(fc->fd);
	fc->closed = 1;
}

static void reply(struct fconn *fc, int status, const char *extra, const void *body, size_t blen,
		  int head_only)
{
	char h[512];
	int n = snprintf(h, sizeof(h), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", status,
			 blen, extra ? extra : "");

	c_send(fc, h, (size_t)n);
	if (!head_only && blen)
		c_send(fc, body, blen);
}

static void reply_error(struct fconn *fc, int status, const char *code)
{
	char b[300];

	snprintf(b, sizeof(b), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
		 "<Message>m</Message></Error>", code);
	reply(fc, status, "Content-Type: application/xml\r\n", b, strlen(b), 0);
}

static const char *hdr(const char *head, const char *name, char *out, size_t cap)
{
	char pat[64];
	const char *p, *e;
	size_t n;

	snprintf(pat, sizeof(pat), "\r\n%s:", name);
	p = strcasestr(head, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	e = strstr(p, "\r\n");
	n = e ? (size_t)(e - p) : strlen(p);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

static void pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t i, k = 0;

	for (i = 0; i < n && k + 1 < cap; i++) {
		if (s[i] == '%' && i + 2 < n) {
			char h[3] = { s[i + 1], s[i + 2], 0 };

			out[k++] = (char)strtol(h, NULL, 16);
			i += 2;
		} else {
			out[k++] = s[i];
		}
	}
	out[k] = '\0';
}

static struct fobj *ffind(const char *key)
{
	int i;

	for (i = 0; i < F.nobjs; i++)
		if (strcmp(F.objs[i].key, key) == 0)
			return &F.objs[i];
	return NULL;
}

static void fstore(const char *key, const void *p, size_t n)
{
	struct fobj *o = ffind(key);

	if (!o) {
		o = &F.objs[F.nobjs++];
		snprintf(o->key, sizeof(o->key), "%s", key);
	} else {
		free(o->data);
	}
	o->data = malloc(n ? n : 1);
	memcpy(o->data, p, n);
	o->len = n;
}

static void fdrop(const char *key)
{
	struct fobj *o = ffind(key);

	if (o) {
		free(o->data);
		*o = F.objs[--F.nobjs];
	}
}

static int cmp_fobj(const void *a, const void *b)
{
	return strcmp(((const struct fobj *)a)->key, ((const struct fobj *)b)->key);
}

static const char *next_put_action(void)
{
	static char a[16];

	if (F.nscript == 0)
		return "";
	snprintf(a, sizeof(a), "%s", F.script[0]);
	memmove(F.script[0], F.script[1], sizeof(F.script[0]) * (size_t)(F.nscript - 1));
	F.nscript--;
	return a;
}

static void handle_list(struct fconn *fc, const char *query)
{
	char prefix[256] = "", *b = malloc(1 << 16);
	const char *p = strstr(query, "prefix=");
	size_t n = 0, plen;
	int i;

	if (p) {
		const char *e = strchr(p, '&');

		pct_decode(p + 7, e ? (size_t)(e - p - 7) : strlen(p + 7), prefix, sizeof(prefix));
	}
	plen = strlen(prefix);
	qsort(F.objs, (size_t)F.nobjs, sizeof(F.objs[0]), cmp_fobj);
	n += (size_t)snprintf(b + n, 65536 - n, "<?xml version=\"1.0\"?>\n<ListBucketResult>"
			      "<Name>" BUCKET "</Name><Prefix>%s</Prefix>", prefix);
	for (i = 0; i < F.nobjs; i++)
		if (strncmp(F.objs[i].key, prefix, plen) == 0)
			n += (size_t)snprintf(b + n, 65536 - n, "<Contents><Key>%s</Key><Size>%zu"
					      "</Size><ETag>\"e\"</ETag><LastModified>2024-01-02T03:"
					      "04:05.000Z</LastModified></Contents>",
					      F.objs[i].key, F.objs[i].len);
	n += (size_t)snprintf(b + n, 65536 - n, "<IsTruncated>false</IsTruncated>"
			      "</ListBucketResult>");
	reply(fc, 200, NULL, b, n, 0);
	free(b);
}

static void handle_delete_many(struct fconn *fc, const uint8_t *body, size_t blen)
{
	char *text = strndup((const char *)body, blen), key[600];
	const char *p, *e;

	for (p = text; (p = strstr(p, "<Key>")) != NULL; p = e) {
		p += 5;
		e = strstr(p, "</Key>");
		snprintf(key, sizeof(key), "%.*s", (int)(e - p), p);
		fdrop(key);
	}
	free(text);
	reply(fc, 200, NULL, "<DeleteResult></DeleteResult>", 29, 0);
}

static void handle(struct fconn *fc, const char *head, const uint8_t *body, size_t blen)
{
	char method[16] = "", target[2048] = "", path[1024], key[1024], v[128];
	char *q;
	struct fobj *o;

	sscanf(head, "%15s %2047s", method, target);
	q = strchr(target, '?');
	if (q)
		*q++ = '\0';
	pct_decode(target, strlen(target), path, sizeof(path));
	if (strncmp(path, "/" BUCKET "/", 5) == 0)
		snprintf(key, sizeof(key), "%s", path + 5);
	else
		key[0] = '\0';
	if (strncmp(path, "/nobucket", 9) == 0) {
		reply_error(fc, 404, "NoSuchBucket");
		return;
	}
	if (strcmp(method, "PUT") == 0) {
		const char *a = next_put_action();
		int inm = hdr(head, "if-none-match", v, sizeof(v)) && strcmp(v, "*") == 0;

		F.puts++;
		F.inm_puts += inm;
		if (strcmp(a, "409") == 0) {
			reply_error(fc, 409, "ConditionalRequestConflict");
			return;
		}
		if (strcmp(a, "500") == 0) {
			reply_error(fc, 500, "InternalError");
			return;
		}
		if (strcmp(a, "steal") == 0) {
			/* Another writer's create lands first; this answer is lost. */
			fstore(key, "theirs", 6);
			c_close(fc);
			return;
		}
		if (inm && ffind(key)) {
			reply_error(fc, 412, "PreconditionFailed");
			return;
		}
		fstore(key, body, blen);
		if (strcmp(a, "lost") == 0) {
			c_close(fc);
			return;
		}
		reply(fc, 200, "ETag: \"p\"\r\n", NULL, 0, 0);
	} else if (strcmp(method, "GET") == 0 && key[0]) {
		char range[64];
		unsigned long long a, b;

		F.gets++;
		o = ffind(key);
		if (!o) {
			reply_error(fc, 404, "NoSuchKey");
		} else if (hdr(head, "range", range, sizeof(range)) &&
			   sscanf(range, "bytes=%llu-%llu", &a, &b) == 2) {
			if (a >= o->len) {
				reply_error(fc, 416, "InvalidRange");
				return;
			}
			if (b >= o->len)
				b = o->len - 1;
			snprintf(v, sizeof(v), "Content-Range: bytes %llu-%llu/%zu\r\n", a, b, o->len);
			reply(fc, 206, v, o->data + a, (size_t)(b - a + 1), 0);
		} else {
			reply(fc, 200, NULL, o->data, o->len, 0);
		}
	} else if (strcmp(method, "GET") == 0) {
		F.lists++;
		handle_list(fc, q ? q : "");
	} else if (strcmp(method, "HEAD") == 0) {
		o = ffind(key);
		if (!o)
			reply(fc, 404, NULL, NULL, 0, 1);
		else
			reply(fc, 200, NULL, NULL, o->len, 1);
	} else if (strcmp(method, "DELETE") == 0) {
		F.deletes++;
		fdrop(key);
		reply(fc, 204, NULL, NULL, 0, 0);
	} else if (strcmp(method, "POST") == 0 && q && strncmp(q, "delete", 6) == 0) {
		handle_delete_many(fc, body, blen);
	} else {
		reply_error(fc, 400, "InvalidRequest");
	}
}

static void c_io(struct loop *l, int fd, unsigned events, void *arg)
{
	struct fconn *fc = arg;
	ssize_t n;

	if (fc->closed)
		return;
	if (fc->cap - fc->len < 65536) {
		fc->cap = fc->cap * 2 + 65536;
		fc->in = realloc(fc->in, fc->cap);
	}
	n = recv(fd, fc->in + fc->len, fc->cap - fc->len, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		c_close(fc);
		return;
	}
	if (n < 0)
		return;
	fc->len += (size_t)n;
	while (!fc->closed) {
		uint8_t *end = memmem(fc->in, fc->len, "\r\n\r\n", 4);
		size_t headlen, blen = 0, total;
		char cl[32], *h;

		if (!end)
			return;
		headlen = (size_t)(end - fc->in) + 4;
		h = strndup((const char *)fc->in, headlen);
		if (hdr(h, "content-length", cl, sizeof(cl)))
			blen = strtoul(cl, NULL, 10);
		total = headlen + blen;
		if (fc->len < total) {
			free(h);
			return;
		}
		handle(fc, h, fc->in + headlen, blen);
		free(h);
		if (fc->closed)
			return;
		memmove(fc->in, fc->in + total, fc->len - total);
		fc->len -= total;
	}
}

static void s_accept(struct loop *l, int fd, unsigned events, void *arg)
{
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct fconn *fc;

	if (cfd == -1)
		return;
	fc = calloc(1, sizeof(*fc));
	fc->fd = cfd;
	fc->next = F.conns;
	F.conns = fc;
	T_EQ(loop_add(l, cfd, LOOP_READ, c_io, fc), 0);
}

static const struct s3_creds tcreds = {
	"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL, -1, "test"
};
static const struct s3_creds *tc_get(void *p, int64_t now) { return &tcreds; }
static void tc_wait(void *p, struct s3cred_waiter *w) { }
static void tc_unwait(void *p, struct s3cred_waiter *w) { }
static const struct s3_cred_ops tc_ops = { tc_get, tc_wait, tc_unwait };

static void s3_setup(const char *bucket)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	struct s3_options so;
	struct objstore_options o;
	char url[256], errbuf[256];
	int one = 1;

	memset(&F, 0, sizeof(F));
	L = loop_new();
	F.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(F.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_EQ(bind(F.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	T_EQ(listen(F.lfd, 64), 0);
	getsockname(F.lfd, (struct sockaddr *)&a, &alen);
	F.port = ntohs(a.sin_port);
	T_EQ(loop_add(L, F.lfd, LOOP_READ, s_accept, NULL), 0);

	memset(&so, 0, sizeof(so));
	so.request_timeout_ms = 2000;
	so.max_total_ms = 10000;
	so.backoff_base_ms = 5;
	so.backoff_cap_ms = 20;
	so.cred_ops = &tc_ops;
	memset(&o, 0, sizeof(o));
	o.s3 = &so;
	snprintf(url, sizeof(url), "s3://%s/pfx?endpoint=http://127.0.0.1:%u", bucket, F.port);
	T_EQ(objstore_open(L, url, &o, &OS, errbuf, sizeof(errbuf)), 0);
	T_EQ(objstore_kind(OS), OBJSTORE_S3);
	T_STR_EQ(objstore_name(OS), bucket[0] == 'b' ? "s3://bkt/pfx" : "s3://nobucket/pfx");
	guard_start();
}

static void s3_teardown(void)
{
	int i;

	objstore_free(OS);
	OS = NULL;
	while (F.conns) {
		struct fconn *fc = F.conns;

		F.conns = fc->next;
		c_close(fc);
		free(fc->in);
		free(fc);
	}
	loop_del(L, F.lfd);
	close(F.lfd);
	for (i = 0; i < F.nobjs; i++)
		free(F.objs[i].data);
	loop_timer_cancel(L, &guard);
	loop_destroy(L);
	L = NULL;
}

/* ---- s3 backend ---- */

static void test_s3_roundtrip(void)
{
	struct call c[4] = { { 0 } };
	struct objstore_range r = { 2, 5 };
	const char *keys[] = { "data/1", "data/2" };

	s3_setup(BUCKET);
	put("data/1", "0123456789", 10, &c[0]);
	put("data/2", "two", 3, &c[1]);
	put("manifest/00000000000000000001", "m1", 2, &c[2]);
	run();
	T_EQ(c[0].err, 0);
	T_EQ(c[0].size, 10);
	T_EQ(c[0].status, 200);
	T_EQ(c[2].err, 0);
	T_CHECK(ffind("pfx/data/1") != NULL);
	T_EQ(F.inm_puts, 0);		/* a plain put carries no condition */

	get("data/1", &r, &c[0]);
	head("data/2", &c[1]);
	get("data/none", NULL, &c[2]);
	head("data/none", &c[3]);
	run();
	T_EQ(c[0].err, 0);
	T_EQ(c[0].body_len, 4);
	T_CHECK(c[0].body && memcmp(c[0].body, "2345", 4) == 0);
	T_EQ(c[1].err, 0);
	T_EQ(c[1].size, 3);
	T_EQ(c[1].mtime_ms, -1);
	T_EQ(c[2].err, SL_E_NOTFOUND);
	T_EQ(c[2].status, 404);
	T_STR_EQ(c[2].code, "NoSuchKey");
	T_EQ(c[3].err, SL_E_NOTFOUND);

	r.first = 10;
	r.last = 20;
	get("data/1", &r, &c[0]);
	list("data/", &c[1]);
	list("", &c[2]);
	run();
	T_EQ(c[0].err, SL_E_INVALID);
	T_EQ(c[0].status, 416);
	T_EQ(c[1].err, 0);
	T_EQ(c[1].nentries, 2);
	T_STR_EQ(c[1].keys[0], "data/1");	/* relative to the prefix */
	T_EQ(c[1].sizes[0], 10);
	T_EQ(c[2].nentries, 3);
	T_STR_EQ(c[2].keys[2], "manifest/00000000000000000001");

	del("data/2", &c[0]);
	run();
	T_EQ(c[0].err, 0);
	T_CHECK(ffind("pfx/data/2") == NULL);
	call_reset(&c[1]);
	in_call = 1;
	T_EQ(objstore_delete_many(OS, keys, 2, on_done, &c[1], NULL), 0);
	in_call = 0;
	outstanding++;
	run();
	T_EQ(c[1].err, 0);
	T_EQ(c[1].ndeleted, 2);
	T_CHECK(ffind("pfx/data/1") == NULL);
	for (int i = 0; i < 4; i++)
		call_reset(&c[i]);
	s3_teardown();
}

static void test_s3_no_bucket(void)
{
	struct call c[2] = { { 0 } };

	/* A missing bucket is an error, never an empty store. */
	s3_setup("nobucket");
	get("manifest/00000000000000000001", NULL, &c[0]);
	list("manifest/", &c[1]);
	run();
	T_EQ(c[0].err, SL_E_REMOTE);
	T_STR_EQ(c[0].code, "NoSuchBucket");
	T_EQ(c[1].err, SL_E_REMOTE);
	T_STR_EQ(c[1].code, "NoSuchBucket");
	s3_teardown();
}

static void test_s3_put_if_absent(void)
{
	struct call c[2] = { { 0 } };

	s3_setup(BUCKET);
	put_new("manifest/00000000000000000001", "mine", 4, &c[0]);
	run();
	T_EQ(c[0].err, 0);
	T_EQ(F.inm_puts, 1);
	put_new("manifest/00000000000000000001", "yours", 5, &c[1]);
	run();
	T_EQ(c[1].err, SL_E_EXISTS);
	T_EQ(c[1].status, 412);
	T_STR_EQ(c[1].code, "PreconditionFailed");
	T_EQ(c[1].attempts, 1);
	T_EQ(F.gets, 1);		/* read back: other bytes, so not ours */
	T_EQ(ffind("pfx/manifest/00000000000000000001")->len, 4);

	/* 409 ConditionalRequestConflict is retried, then the create goes through. */
	strcpy(F.script[F.nscript++], "409");
	put_new("manifest/00000000000000000002", "two", 3, &c[0]);
	run();
	T_EQ(c[0].err, 0);
	T_EQ(c[0].attempts, 2);
	T_CHECK(ffind("pfx/manifest/00000000000000000002") != NULL);
	call_reset(&c[0]);
	call_reset(&c[1]);
	s3_teardown();
}

static void test_s3_put_if_absent_lost_answer(void)
{
	struct call c = { 0 };

	s3_setup(BUCKET);
	/* The create happened but its answer was lost: the retry meets 412, the
	 * object read back holds our bytes, so the put succeeded. */
	strcpy(F.script[F.nscript++], "lost");
	put_new("manifest/00000000000000000003", "ours", 4, &c);
	run();
	T_EQ(c.err, 0);
	T_EQ(c.attempts, 2);
	T_EQ(c.size, 4);
	T_EQ(F.puts, 2);
	T_EQ(F.gets, 1);

	/* Another writer's create landed first: the read-back differs, we lost. */
	strcpy(F.script[F.nscript++], "steal");
	put_new("manifest/00000000000000000004", "ours", 4, &c);
	run();
	T_EQ(c.err, SL_E_EXISTS);
	T_EQ(c.status, 412);
	T_EQ(F.gets, 2);
	T_CHECK(memcmp(ffind("pfx/manifest/00000000000000000004")->data, "theirs", 6) == 0);
	call_reset(&c);
	s3_teardown();
}

static void test_s3_cancel_free(void)
{
	struct call c[2] = { { 0 } };
	struct objstore_op *op = NULL;

	s3_setup(BUCKET);
	T_EQ(objstore_put(OS, "a", "1", 1, on_done, &c[0], &op), 0);
	objstore_cancel(OS, op);
	T_EQ(objstore_get(OS, "a", NULL, on_done, &c[1], NULL), 0);
	outstanding++;
	objstore_free(OS);
	OS = NULL;
	T_EQ(c[0].done, 0);
	T_EQ(c[1].done, 1);
	T_EQ(c[1].err, SL_E_CLOSED);
	outstanding = 0;
	s3_teardown();
}

int main(void)
{
	log_set_level(getenv("OBJSTORE_TEST_DEBUG") ? LOG_DEBUG : LOG_ERROR);
	T_RUN(test_key_rules);
	T_RUN(test_file_roundtrip);
	T_RUN(test_file_put_if_absent);
	T_RUN(test_file_two_writers);
	T_RUN(test_file_list);
	T_RUN(test_file_delete);
	T_RUN(test_file_write_order);
	T_RUN(test_file_faults);
	T_RUN(test_file_cancel_free);
	T_RUN(test_file_cancel_in_callback);
	T_RUN(test_open_errors);
	T_RUN(test_s3_roundtrip);
	T_RUN(test_s3_no_bucket);
	T_RUN(test_s3_put_if_absent);
	T_RUN(test_s3_put_if_absent_lost_answer);
	T_RUN(test_s3_cancel_free);
	return t_done();
}
