/*
 * objstore_file.c - the file backend of the object store (see objstore.h):
 * objects are files under one directory.
 *
 * Owns the directory's path, one I/O thread (the worker) and the
 * operations not yet called back.  The syscalls of every operation run on
 * the worker, one operation at a time in the order they were started, so a
 * large object's write and fsync never stall the loop; results come back to
 * the loop through an eventfd and are called back in the same order.
 *
 *   loop thread                          worker
 *   start: copy the call --> TODO ------> RUNNING: syscalls --> DONE --eventfd-->
 *   on_wake (loop): DELIVERING --> callback --> freed
 *
 *   cancel  TODO, DONE: unlinked and freed at once;
 *           RUNNING: marked, and the cancel waits until the worker is done
 *           with it (a put's buffer is the caller's), then the worker frees it;
 *           DELIVERING: marked, on_wake frees it without calling back.
 *   free    the worker finishes what it is running and exits; everything
 *           left is called back with SL_E_CLOSED.
 *
 * Threads: the worker touches only the operation it runs, seq and rnd, and
 * the lists under mu; the loop thread owns everything else.  Keys and
 * arguments are copied at start, so the worker never reads the caller's
 * memory but a put's borrowed buffer.  The worker blocks every signal.

 * Writing an object (put, put_if_absent), the order that makes it atomic:
 *   1. create DIR/.../.tmp-PID-SEQ-RANDOM beside the final name, O_EXCL;
 *      if its directory is missing, make the directories of the key (each
 *      new one fsynced into its parent) and create it again;
 *   2. write every byte, fsync, close;
 *   3. put: rename() it over the final name (atomic replace);
 *      put_if_absent: link() it to the final name (fails with EEXIST when
 *      the name exists, atomically, even between processes), then unlink
 *      the temporary name; on EEXIST, a file holding the same bytes counts
 *      as success (an earlier try of the same put, as on S3);
 *   4. fsync the directory, so the new name survives a power cut.
 * A failure before 3 removes the temporary file and leaves the key as it
 * was.  A crash leaves at most a ".tmp-" file: segments of keys never start
 * with '.', so no get or listing sees it.
 *
 * Invariants:
 *   1. A key's file, once visible, is complete and fsynced (steps 2 before 3).
 *   2. Every path is DIR "/" key or a temporary name beside one: keys are
 *      checked by objstore.c, so no ".." and no absolute names reach here.
 *   3. Deletes are not fsynced: a delete lost to a crash leaves an object
 *      that nothing references, which the manifest's collector deletes again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "objstore.h"
#include "../kernel/log.h"

#define TAG "objstore"
#define PATH_CAP (S3URL_PATH_MAX + OBJSTORE_KEY_MAX + 96)
#define WORKER_STACK (1024 * 1024)	/* the listing recurses; a compare reads 64 KiB */

static int sys_open(const char *path, int flags, mode_t mode) { return open(path, flags, mode); }
static ssize_t sys_write(int fd, const void *buf, size_t n) { return write(fd, buf, n); }

struct objstore_file_sys objstore_file_sys = {
	sys_open, close, sys_write, pread, fsync, rename, link, unlink, mkdir,
};

void objstore_file_sys_reset(void)
{
	objstore_file_sys.open = sys_open;
	objstore_file_sys.close = close;
	objstore_file_sys.write = sys_write;
	objstore_file_sys.pread = pread;
	objstore_file_sys.fsync = fsync;
	objstore_file_sys.rename = rename;
	objstore_file_sys.link = link;
	objstore_file_sys.unlink = unlink;
	objstore_file_sys.mkdir = mkdir;
}

#define SYS objstore_file_sys

/* Where an operation is; the worker's mutex guards it. */
enum { AT_TODO, AT_RUNNING, AT_DONE, AT_DELIVERING };

struct fop {
	struct fop *next;		/* on todo or done */
	int where;
	int cancelled;			/* while running (the worker frees it) or delivering
					   (on_wake frees it, without calling back) */
	objstore_fn fn;
	void *arg;
	/* the call, copied (but a put's buffer, which is borrowed) */
	enum objstore_opkind kind;
	char *key;
	const void *buf;
	size_t len;
	struct objstore_range range;
	int ranged;
	char **keys;
	size_t nkeys;
	/* the result */
	struct objstore_result res;
	struct objstore_entry *ents;
	size_t nents, capents;
	struct objstore_key_error *kerr;
	size_t nkerr;
};

struct fstore {
	struct objstore base;
	char root[S3URL_PATH_MAX + 1];
	size_t max_get;
	uint64_t seq;			/* worker only */
	uint64_t rnd;
	/* shared with the worker, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* the worker waits for work */
	pthread_cond_t idle;		/* a cancel waits for the running operation */
	struct fop *todo, *todo_tail;
	struct fop *done, *done_tail;
	struct fop *running;
	int quit;
	int efd;
	pthread_t thr;
};

static int64_t mtime_ms(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

/* DIR "/" key into buf; SL_E_INVALID if it does not fit. */
static int path_of(const struct fstore *fs, const char *key, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s/%s", strcmp(fs->root, "/") == 0 ? "" : fs->root, key);

	return n < 0 || (size_t)n >= cap ? SL_E_INVALID : 0;
}

static int fsync_dir(const char *dir)
{
	int fd = SYS.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0), err = 0;

	if (fd == -1)
		return -errno;
	if (SYS.fsync(fd) == -1)
		err = -errno;
	if (SYS.close(fd) == -1 && err == 0)
		err = -errno;
	return err;
}

/* The directory part of path (everything before the last '/'). */
static void dir_of(const char *path, char *dir, size_t cap)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (n == 0) {
		snprintf(dir, cap, "%s", slash ? "/" : ".");
		return;
	}
	snprintf(dir, cap, "%.*s", (int)n, path);
}

/* Make the directories of key that are missing, each fsynced into its parent. */
static int make_dirs(const struct fstore *fs, const char *key)
{
	char path[PATH_CAP], parent[PATH_CAP];
	const char *slash;
	int err;

	for (slash = strchr(key, '/'); slash; slash = strchr(slash + 1, '/')) {
		char sub[OBJSTORE_KEY_MAX + 1];

		snprintf(sub, sizeof(sub), "%.*s", (int)(slash - key), key);
		err = path_of(fs, sub, path, sizeof(path));
		if (err)
			return err;
		if (SYS.mkdir(path, 0755) == -1) {
			if (errno == EEXIST)
				continue;
			return -errno;
		}
		dir_of(path, parent, sizeof(parent));
		err = fsync_dir(parent);
		if (err)
			return err;
	}
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = SYS.write(fd, p, n);

		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 1 if the file at path holds exactly buf's len bytes, 0 if not (or unreadable). */
static int same_bytes(const char *path, const uint8_t *buf, size_t len)
{
	uint8_t chunk[65536];
	struct stat st;
	size_t off = 0;
	int fd = SYS.open(path, O_RDONLY | O_CLOEXEC, 0), same = 0;

	if (fd == -1)
		return 0;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != len)
		goto out;
	while (off < len) {
		size_t want = len - off < sizeof(chunk) ? len - off : sizeof(chunk);
		ssize_t r = SYS.pread(fd, chunk, want, (off_t)off);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0 || memcmp(chunk, buf + off, (size_t)r) != 0)
			goto out;
		off += (size_t)r;
	}
	same = 1;
out:
	SYS.close(fd);
	return same;
}

static int do_put(struct fstore *fs, const char *key, const void *buf, size_t len, int excl)
{
	char path[PATH_CAP], dir[PATH_CAP], tmp[PATH_CAP];
	int fd, err, n;

	err = path_of(fs, key, path, sizeof(path));
	if (err)
		return err;
	dir_of(path, dir, sizeof(dir));
	n = snprintf(tmp, sizeof(tmp), "%s/.tmp-%ld-%llu-%016llx", dir, (long)getpid(),
		     (unsigned long long)++fs->seq, (unsigned long long)fs->rnd);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return SL_E_INVALID;
	fd = SYS.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd == -1 && errno == ENOENT && strchr(key, '/')) {
		err = make_dirs(fs, key);
		if (err)
			return err;
		fd = SYS.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	}
	if (fd == -1)
		return -errno;
	err = write_all(fd, buf, len);
	if (err == 0 && SYS.fsync(fd) == -1)
		err = -errno;
	if (SYS.close(fd) == -1 && err == 0)
		err = -errno;
	if (err)
		goto fail;
	if (excl) {
		if (SYS.link(tmp, path) == -1) {
			err = errno == EEXIST ? SL_E_EXISTS : -errno;
			/*
			 * The same bytes: an earlier try of this very put that
			 * failed after its link (at the directory fsync).  Then
			 * it is ours; the fsync below finishes what it began.
			 */
			if (err == SL_E_EXISTS && same_bytes(path, buf, len))
				err = 0;
			SYS.unlink(tmp);
			if (err)
				return err;
			return fsync_dir(dir);
		}
		/* The object is in place; a leftover temporary name is only litter. */
		if (SYS.unlink(tmp) == -1)
			log_warn(TAG, "cannot remove %s: %s", tmp, sl_strerror(-errno));
	} else if (SYS.rename(tmp, path) == -1) {
		err = -errno;
		goto fail;
	}
	return fsync_dir(dir);
fail:
	SYS.unlink(tmp);
	return err;
}

/* open() of an object for reading; SL_E_NOTFOUND for what is not one. */
static int open_obj(const struct fstore *fs, const char *key, struct stat *st, int *fdp)
{
	char path[PATH_CAP];
	int fd, err = path_of(fs, key, path, sizeof(path));

	if (err)
		return err;
	fd = SYS.open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd == -1)
		return errno == ENOENT || errno == ENOTDIR ? SL_E_NOTFOUND : -errno;
	if (fstat(fd, st) == -1) {
		err = -errno;
		SYS.close(fd);
		return err;
	}
	if (!S_ISREG(st->st_mode)) {
		SYS.close(fd);
		return SL_E_NOTFOUND;
	}
	*fdp = fd;
	return 0;
}

static int do_get(struct fstore *fs, struct fop *op, const char *key,
		  const struct objstore_range *range)
{
	struct stat st;
	uint64_t first = 0, n;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, err = open_obj(fs, key, &st, &fd);

	if (err)
		return err;
	n = (uint64_t)st.st_size;
	if (range) {
		if (range->first >= n) {
			err = SL_E_INVALID;
			goto out;
		}
		first = range->first;
		n = (range->last < n - 1 ? range->last : n - 1) - first + 1;
	}
	if (n > fs->max_get) {
		err = SL_E_TOOBIG;
		goto out;
	}
	if (n) {
		buf = malloc((size_t)n);
		if (!buf) {
			err = SL_E_NOMEM;
			goto out;
		}
	}
	while (got < n) {
		ssize_t r = SYS.pread(fd, buf + got, (size_t)n - got, (off_t)(first + got));

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* Objects are never rewritten in place: a short file is damage. */
			err = r == 0 ? -EIO : -errno;
			goto out;
		}
		got += (size_t)r;
	}
	op->res.body = buf;
	op->res.body_len = (size_t)n;
	op->res.size = n;
	op->res.mtime_ms = mtime_ms(&st);
	buf = NULL;
out:
	free(buf);
	SYS.close(fd);
	return err;
}

static int do_head(struct fstore *fs, struct fop *op, const char *key)
{
	struct stat st;
	int fd, err = open_obj(fs, key, &st, &fd);

	if (err)
		return err;
	SYS.close(fd);
	op->res.size = (uint64_t)st.st_size;
	op->res.mtime_ms = mtime_ms(&st);
	return 0;
}

static int do_delete(struct fstore *fs, const char *key)
{
	char path[PATH_CAP];
	int err = path_of(fs, key, path, sizeof(path));

	if (err)
		return err;
	if (SYS.unlink(path) == -1) {
		/* Nothing there, or a directory (not an object): nothing to delete. */
		if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
			return 0;
		return -errno;
	}
	return 0;
}

static int do_delete_many(struct fstore *fs, struct fop *op, const char *const *keys, size_t n)
{
	size_t i;

	op->kerr = calloc(n, sizeof(*op->kerr));
	if (!op->kerr)
		return SL_E_NOMEM;
	for (i = 0; i < n; i++) {
		int err = do_delete(fs, keys[i]);

		if (err == 0) {
			op->res.ndeleted++;
			continue;
		}
		/* keys[i] is the caller's: valid until the call returns, not later. */
		op->kerr[op->nkerr].key = strdup(keys[i]);
		op->kerr[op->nkerr].code = "";
		op->kerr[op->nkerr].message = sl_strerror(err);
		if (!op->kerr[op->nkerr].key)
			return SL_E_NOMEM;
		op->nkerr++;
	}
	op->res.key_errors = op->kerr;
	op->res.nkey_errors = op->nkerr;
	return 0;
}

static int add_entry(struct fstore *fs, struct fop *op, const char *key, const struct stat *st)
{
	struct objstore_entry *e;

	if (op->nents == fs->base.max_list)
		return SL_E_TOOBIG;
	if (op->nents == op->capents) {
		size_t cap = op->capents ? op->capents * 2 : 64;
		struct objstore_entry *n = realloc(op->ents, cap * sizeof(*n));

		if (!n)
			return SL_E_NOMEM;
		op->ents = n;
		op->capents = cap;
	}
	e = &op->ents[op->nents];
	e->key = strdup(key);
	if (!e->key)
		return SL_E_NOMEM;
	e->size = (uint64_t)st->st_size;
	e->mtime_ms = mtime_ms(st);
	op->nents++;
	return 0;
}

/*
 * Walk the directory of relative path rel ("" or ending in '/'), adding the
 * files whose keys start with prefix and descending into directories that
 * may hold some.  Names that are not valid key segments are not ours.
 */
static int walk(struct fstore *fs, struct fop *op, char *rel, size_t rlen, const char *prefix,
		size_t plen)
{
	char path[PATH_CAP];
	struct dirent *de;
	DIR *d;
	int err = 0;

	if (snprintf(path, sizeof(path), "%s/%s", fs->root, rel) >= (int)sizeof(path))
		return 0;
	d = opendir(path);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	while (err == 0 && (errno = 0, de = readdir(d)) != NULL) {
		size_t nlen = strlen(de->d_name);
		struct stat st;
		size_t cmp;

		if (rlen + nlen + 1 > OBJSTORE_KEY_MAX || de->d_name[0] == '.')
			continue;
		memcpy(rel + rlen, de->d_name, nlen + 1);
		if (objstore_key_check(rel) != 0) {
			rel[rlen] = '\0';
			continue;
		}
		if (fstatat(dirfd(d), de->d_name, &st, 0) == -1) {
			if (errno != ENOENT)
				err = -errno;	/* ENOENT: deleted while we looked */
		} else if (S_ISDIR(st.st_mode)) {
			rel[rlen + nlen] = '/';
			rel[rlen + nlen + 1] = '\0';
			cmp = rlen + nlen + 1 < plen ? rlen + nlen + 1 : plen;
			if (strncmp(rel, prefix, cmp) == 0)
				err = walk(fs, op, rel, rlen + nlen + 1, prefix, plen);
		} else if (S_ISREG(st.st_mode) && strncmp(rel, prefix, plen) == 0) {
			err = add_entry(fs, op, rel, &st);
		}
		rel[rlen] = '\0';
	}
	if (err == 0 && errno != 0)
		err = -errno;
	closedir(d);
	return err;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct objstore_entry *)a)->key,
		      ((const struct objstore_entry *)b)->key);
}

static int do_list(struct fstore *fs, struct fop *op, const char *prefix)
{
	char rel[OBJSTORE_KEY_MAX + 2];
	const char *slash = strrchr(prefix, '/');
	size_t rlen = slash ? (size_t)(slash - prefix) + 1 : 0;
	int err;

	/* Start in the deepest directory the prefix names whole. */
	memcpy(rel, prefix, rlen);
	rel[rlen] = '\0';
	err = walk(fs, op, rel, rlen, prefix, strlen(prefix));
	if (err)
		return err;
	if (op->nents)
		qsort(op->ents, op->nents, sizeof(*op->ents), cmp_entry);
	op->res.entries = op->ents;
	op->res.nentries = op->nents;
	return 0;
}

static void fop_free(struct fop *op)
{
	size_t i;

	free(op->res.body);
	for (i = 0; i < op->nents; i++)
		free((char *)op->ents[i].key);
	free(op->ents);
	for (i = 0; i < op->nkerr; i++)
		free((char *)op->kerr[i].key);
	free(op->kerr);
	free(op->key);
	for (i = 0; op->keys && i < op->nkeys; i++)
		free(op->keys[i]);
	free(op->keys);
	free(op);
}

/* The worker: one operation's syscalls, its result into op->res. */
static void run(struct fstore *fs, struct fop *op)
{
	int err = 0;

	switch (op->kind) {
	case OBJSTORE_OP_PUT:
	case OBJSTORE_OP_PUT_IF_ABSENT:
		err = do_put(fs, op->key, op->buf, op->len, op->kind == OBJSTORE_OP_PUT_IF_ABSENT);
		if (err == 0)
			op->res.size = op->len;
		break;
	case OBJSTORE_OP_GET:
		err = do_get(fs, op, op->key, op->ranged ? &op->range : NULL);
		break;
	case OBJSTORE_OP_HEAD:
		err = do_head(fs, op, op->key);
		break;
	case OBJSTORE_OP_DELETE:
		err = do_delete(fs, op->key);
		if (err == 0)
			op->res.ndeleted = 1;
		break;
	case OBJSTORE_OP_DELETE_MANY:
		err = do_delete_many(fs, op, (const char *const *)op->keys, op->nkeys);
		break;
	case OBJSTORE_OP_LIST:
		err = do_list(fs, op, op->key);
		break;
	}
	if (err) {
		/* A failed operation reports its failure, with nothing half-made. */
		free(op->res.body);
		op->res.body = NULL;
		op->res.body_len = 0;
		op->res.entries = NULL;
		op->res.nentries = 0;
		op->res.err = err;
		if (err != SL_E_NOTFOUND)
			log_debug(TAG, "%s %s: %s", fs->base.name, op->key ? op->key : "(keys)",
				  sl_strerror(err));
	}
}

static void *worker(void *arg)
{
	struct fstore *fs = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&fs->mu);
	for (;;) {
		struct fop *op;

		while (!fs->quit && !fs->todo)
			pthread_cond_wait(&fs->cv, &fs->mu);
		if (fs->quit)
			break;
		op = fs->todo;
		fs->todo = op->next;
		if (!fs->todo)
			fs->todo_tail = NULL;
		op->next = NULL;
		op->where = AT_RUNNING;
		fs->running = op;
		pthread_mutex_unlock(&fs->mu);

		run(fs, op);

		pthread_mutex_lock(&fs->mu);
		fs->running = NULL;
		if (op->cancelled) {
			fop_free(op);
		} else {
			op->where = AT_DONE;
			if (fs->done_tail)
				fs->done_tail->next = op;
			else
				fs->done = op;
			fs->done_tail = op;
			if (write(fs->efd, &one, sizeof(one)) == -1) {
				/* EAGAIN: the counter is saturated, so the loop is awake anyway. */
			}
		}
		pthread_cond_broadcast(&fs->idle);
	}
	pthread_mutex_unlock(&fs->mu);
	return NULL;
}

/* The loop: call back what the worker has finished, in order. */
static void on_wake(struct loop *l, int fd, unsigned events, void *arg)
{
	struct fstore *fs = arg;
	struct fop *list, *op;
	uint64_t n;

	if (read(fs->efd, &n, sizeof(n)) == -1) {
		/* EAGAIN: woken for what an earlier turn already took. */
	}
	pthread_mutex_lock(&fs->mu);
	list = fs->done;
	fs->done = fs->done_tail = NULL;
	for (op = list; op; op = op->next)
		op->where = AT_DELIVERING;
	pthread_mutex_unlock(&fs->mu);
	while (list) {
		op = list;
		list = op->next;
		/* A callback before this one may have cancelled it. */
		if (!op->cancelled)
			op->fn(op->arg, &op->res);
		fop_free(op);
	}
}

static int f_start(struct objstore *os, const struct objstore_call *c, struct objstore_op **handle)
{
	struct fstore *fs = (struct fstore *)os;
	struct fop *op = calloc(1, sizeof(*op));
	size_t i;

	if (!op)
		return SL_E_NOMEM;
	op->fn = c->fn;
	op->arg = c->arg;
	op->kind = c->kind;
	op->buf = c->buf;
	op->len = c->len;
	if (c->range) {
		op->range = *c->range;
		op->ranged = 1;
	}
	op->res.code = "";
	op->res.message = "";
	op->res.attempts = 1;
	op->res.mtime_ms = -1;
	if (c->key && !(op->key = strdup(c->key)))
		goto nomem;
	if (c->nkeys) {
		op->keys = calloc(c->nkeys, sizeof(*op->keys));
		if (!op->keys)
			goto nomem;
		op->nkeys = c->nkeys;
		for (i = 0; i < c->nkeys; i++)
			if (!(op->keys[i] = strdup(c->keys[i])))
				goto nomem;
	}
	pthread_mutex_lock(&fs->mu);
	op->where = AT_TODO;
	if (fs->todo_tail)
		fs->todo_tail->next = op;
	else
		fs->todo = op;
	fs->todo_tail = op;
	pthread_cond_signal(&fs->cv);
	pthread_mutex_unlock(&fs->mu);
	*handle = (struct objstore_op *)op;
	return 0;
nomem:
	fop_free(op);
	return SL_E_NOMEM;
}

/* Take op off list (head, tail); 1 if it was there. */
static int unlink_from(struct fop **head, struct fop **tail, struct fop *op)
{
	struct fop *prev = NULL, *it;

	for (it = *head; it; prev = it, it = it->next) {
		if (it != op)
			continue;
		if (prev)
			prev->next = op->next;
		else
			*head = op->next;
		if (*tail == op)
			*tail = prev;
		op->next = NULL;
		return 1;
	}
	return 0;
}

static void f_cancel(struct objstore *os, struct objstore_op *h)
{
	struct fstore *fs = (struct fstore *)os;
	struct fop *op = (struct fop *)h;
	int gone = 0;

	pthread_mutex_lock(&fs->mu);
	switch (op->where) {
	case AT_TODO:
		gone = unlink_from(&fs->todo, &fs->todo_tail, op);
		break;
	case AT_DONE:
		gone = unlink_from(&fs->done, &fs->done_tail, op);
		break;
	case AT_DELIVERING:
		/* on_wake holds it (a callback cancels it, or its own callback runs). */
		op->cancelled = 1;
		break;
	case AT_RUNNING:
		/* Its put buffer is borrowed: wait until the worker is done with it. */
		op->cancelled = 1;
		while (fs->running == op)
			pthread_cond_wait(&fs->idle, &fs->mu);
		break;
	}
	pthread_mutex_unlock(&fs->mu);
	if (gone)
		fop_free(op);
}

static void f_free(struct objstore *os)
{
	struct fstore *fs = (struct fstore *)os;
	struct fop *lists[2], *op;
	int i;

	pthread_mutex_lock(&fs->mu);
	fs->quit = 1;
	pthread_cond_signal(&fs->cv);
	pthread_mutex_unlock(&fs->mu);
	/* The operation under way finishes first (its buffer is the caller's). */
	pthread_join(fs->thr, NULL);
	loop_del(os->l, fs->efd);
	close(fs->efd);
	lists[0] = fs->done;
	lists[1] = fs->todo;
	fs->done = fs->done_tail = fs->todo = fs->todo_tail = NULL;
	for (i = 0; i < 2; i++) {
		while ((op = lists[i]) != NULL) {
			lists[i] = op->next;
			free(op->res.body);
			op->res.body = NULL;
			op->res.body_len = 0;
			op->res.entries = NULL;
			op->res.nentries = 0;
			op->res.key_errors = NULL;
			op->res.nkey_errors = 0;
			op->res.err = SL_E_CLOSED;
			op->fn(op->arg, &op->res);
			fop_free(op);
		}
	}
	pthread_cond_destroy(&fs->cv);
	pthread_cond_destroy(&fs->idle);
	pthread_mutex_destroy(&fs->mu);
	free(fs);
}

static const struct objstore_backend file_backend = { f_start, f_cancel, f_free };

static int start_worker(struct fstore *fs)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	fs->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fs->efd == -1)
		return -errno;
	rc = loop_add(fs->base.l, fs->efd, LOOP_READ, on_wake, fs);
	if (rc != 0)
		goto fail_efd;
	rc = pthread_attr_init(&attr);
	if (rc != 0) {
		rc = -rc;
		goto fail_loop;
	}
	(void)pthread_attr_setstacksize(&attr, WORKER_STACK);
	/* Signals are the main thread's business (PID 1 reaps and powers off). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&fs->thr, &attr, worker, fs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		rc = -rc;
		goto fail_loop;
	}
	return 0;
fail_loop:
	loop_del(fs->base.l, fs->efd);
fail_efd:
	close(fs->efd);
	return rc;
}

int objstore_file_new(struct loop *l, const struct s3url *u, const struct objstore_options *o,
		      struct objstore **out, char *errbuf, size_t errlen)
{
	struct fstore *fs;
	struct stat st;
	char parent[PATH_CAP];
	int err;

	if (u->kind != S3URL_FILE)
		return SL_E_INVALID;
	if (stat(u->path, &st) == -1) {
		int e = errno;

		if (e != ENOENT || !o->create_dir) {
			snprintf(errbuf, errlen, "%s: %s", u->path, strerror(e));
			return SL_E_CONFIG;
		}
		if (mkdir(u->path, 0755) == -1) {
			snprintf(errbuf, errlen, "cannot make the directory %s: %s", u->path,
				 strerror(errno));
			return SL_E_CONFIG;
		}
		dir_of(u->path, parent, sizeof(parent));
		if (fsync_dir(parent) != 0)
			log_warn(TAG, "cannot fsync %s after making %s", parent, u->path);
		log_info(TAG, "made the directory %s for objects", u->path);
	} else if (!S_ISDIR(st.st_mode)) {
		snprintf(errbuf, errlen, "%s is not a directory", u->path);
		return SL_E_CONFIG;
	}
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return SL_E_NOMEM;
	fs->base.be = &file_backend;
	fs->base.l = l;
	fs->base.kind = OBJSTORE_FILE;
	fs->base.max_list = o->max_list ? o->max_list : OBJSTORE_LIST_MAX;
	snprintf(fs->base.name, sizeof(fs->base.name), "file://%s", u->path);
	snprintf(fs->root, sizeof(fs->root), "%s", u->path);
	fs->max_get = o->max_get_bytes ? o->max_get_bytes : OBJSTORE_GET_MAX;
	if (getrandom(&fs->rnd, sizeof(fs->rnd), GRND_NONBLOCK) != (ssize_t)sizeof(fs->rnd))
		fs->rnd = (uint64_t)loop_wall_ms() ^ (uint64_t)(uintptr_t)fs;
	pthread_mutex_init(&fs->mu, NULL);
	pthread_cond_init(&fs->cv, NULL);
	pthread_cond_init(&fs->idle, NULL);
	err = start_worker(fs);
	if (err) {
		snprintf(errbuf, errlen, "cannot start the object store's I/O thread: %s",
			 sl_strerror(err));
		pthread_cond_destroy(&fs->cv);
		pthread_cond_destroy(&fs->idle);
		pthread_mutex_destroy(&fs->mu);
		free(fs);
		return err;
	}
	*out = &fs->base;
	return 0;
}
