/*
 * objstore_file.c - the file backend of the object store (see objstore.h):
 * objects are files under one directory.
 *
 * Owns the directory's path and the operations whose callbacks have not
 * run yet.  The work of every operation is done synchronously inside
 * start(); the result waits in the operation for an end-of-turn task that
 * calls back, so nothing reaches a caller from inside a call.
 *
 *   start --work (syscalls)--> DONE --loop task--> callback --> freed
 *                                `--cancel or free--> freed (free: callback
 *                                                     with SL_E_CLOSED first)
 *
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
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "objstore.h"
#include "../kernel/log.h"

#define TAG "objstore"
#define PATH_CAP (S3URL_PATH_MAX + OBJSTORE_KEY_MAX + 96)

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

struct fstore {
	struct objstore base;
	char root[S3URL_PATH_MAX + 1];
	size_t max_get;
	struct fop *ops;
	uint64_t seq;
	uint64_t rnd;
};

struct fop {
	struct fstore *fs;
	struct fop *prev, *next;
	struct loop_task task;
	objstore_fn fn;
	void *arg;
	struct objstore_result res;
	char errname[64];
	/* list */
	struct objstore_entry *ents;
	size_t nents, capents;
	/* delete_many */
	struct objstore_key_error *kerr;
	size_t nkerr;
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
	free(op);
}

static void fop_unlink(struct fop *op)
{
	struct fstore *fs = op->fs;

	if (op->prev)
		op->prev->next = op->next;
	else
		fs->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	op->prev = op->next = NULL;
}

static void fop_deliver(struct loop *l, void *arg)
{
	struct fop *op = arg;

	fop_unlink(op);
	op->fn(op->arg, &op->res);
	fop_free(op);
}

static int f_start(struct objstore *os, const struct objstore_call *c, struct objstore_op **handle)
{
	struct fstore *fs = (struct fstore *)os;
	struct fop *op = calloc(1, sizeof(*op));
	int err = 0;

	if (!op)
		return SL_E_NOMEM;
	op->fs = fs;
	op->fn = c->fn;
	op->arg = c->arg;
	op->res.code = "";
	op->res.message = "";
	op->res.attempts = 1;
	op->res.mtime_ms = -1;
	loop_task_init(&op->task, fop_deliver, op);
	switch (c->kind) {
	case OBJSTORE_OP_PUT:
	case OBJSTORE_OP_PUT_IF_ABSENT:
		err = do_put(fs, c->key, c->buf, c->len, c->kind == OBJSTORE_OP_PUT_IF_ABSENT);
		if (err == 0)
			op->res.size = c->len;
		break;
	case OBJSTORE_OP_GET:
		err = do_get(fs, op, c->key, c->range);
		break;
	case OBJSTORE_OP_HEAD:
		err = do_head(fs, op, c->key);
		break;
	case OBJSTORE_OP_DELETE:
		err = do_delete(fs, c->key);
		if (err == 0)
			op->res.ndeleted = 1;
		break;
	case OBJSTORE_OP_DELETE_MANY:
		err = do_delete_many(fs, op, c->keys, c->nkeys);
		break;
	case OBJSTORE_OP_LIST:
		err = do_list(fs, op, c->key);
		break;
	}
	if (err == SL_E_NOMEM) {
		fop_free(op);
		return err;
	}
	if (err) {
		/* A failed operation reports its failure, with nothing half-made. */
		free(op->res.body);
		op->res.body = NULL;
		op->res.body_len = 0;
		op->res.entries = NULL;
		op->res.nentries = 0;
		op->res.err = err;
		if (c->kind != OBJSTORE_OP_GET || err != SL_E_NOTFOUND)
			log_debug(TAG, "%s %s: %s", os->name, c->key ? c->key : "(keys)",
				  sl_strerror(err));
	}
	op->next = fs->ops;
	if (fs->ops)
		fs->ops->prev = op;
	fs->ops = op;
	loop_defer(os->l, &op->task);
	*handle = (struct objstore_op *)op;
	return 0;
}

static void f_cancel(struct objstore *os, struct objstore_op *h)
{
	struct fop *op = (struct fop *)h;

	loop_task_cancel(os->l, &op->task);
	fop_unlink(op);
	fop_free(op);
}

static void f_free(struct objstore *os)
{
	struct fstore *fs = (struct fstore *)os;

	while (fs->ops) {
		struct fop *op = fs->ops;

		loop_task_cancel(os->l, &op->task);
		fop_unlink(op);
		free(op->res.body);
		op->res.body = NULL;
		op->res.body_len = 0;
		op->res.entries = NULL;
		op->res.nentries = 0;
		op->res.err = SL_E_CLOSED;
		op->fn(op->arg, &op->res);
		fop_free(op);
	}
	free(fs);
}

static const struct objstore_backend file_backend = { f_start, f_cancel, f_free };

int objstore_file_new(struct loop *l, const struct s3url *u, const struct objstore_options *o,
		      struct objstore **out, char *errbuf, size_t errlen)
{
	struct fstore *fs;
	struct stat st;
	char parent[PATH_CAP];

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
	*out = &fs->base;
	return 0;
}
