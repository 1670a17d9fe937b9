/*
 * objstore.h - the object store: one asynchronous interface over two
 * backends, where data objects and the manifest live.
 *
 *   s3    a bucket (and prefix) through the S3 client (storage/s3.h);
 *   file  a directory on a local file system: the embedded default when the
 *         broker runs as a normal process without a bucket, and the store
 *         of the unit tests.
 *
 * Both are made from sluice.objects.url (storage/s3url.h): file:///PATH or
 * s3://BUCKET[/PREFIX]?....  Keys are relative to the URL (the s3 prefix or
 * the directory).
 *
 * Operations:
 *   objstore_put            store a whole object, replacing any of that key;
 *   objstore_put_if_absent  create the object only if the key is free:
 *                           SL_E_EXISTS otherwise (S3: If-None-Match: *;
 *                           file: link(2) of a finished temporary file,
 *                           which fails with EEXIST).  This is the
 *                           compare-and-swap the manifest's versions stand
 *                           on: of two writers creating one key, exactly
 *                           one succeeds.  A key that already holds exactly
 *                           the bytes given counts as a success: that is
 *                           how a put repeated after an unknown outcome
 *                           (a lost answer, a failed directory fsync)
 *                           learns that its first try took effect;
 *   objstore_get            the object, or an inclusive byte range of it;
 *   objstore_head           its size (and time, where known);
 *   objstore_delete         delete a key (a key that does not exist is a
 *                           success: S3 answers 204 for it too);
 *   objstore_delete_many    several keys; the keys that could not be
 *                           deleted come back in key_errors;
 *   objstore_list           every key under a prefix, sorted bytewise
 *                           (S3's order), in one answer.
 *
 * Each returns 0 and calls its callback exactly once later, from the loop,
 * never from inside the call; or returns a negative error at once and never
 * calls it: SL_E_INVALID (a key outside the rules below, a bad argument),
 * SL_E_NOMEM, SL_E_CLOSED (the store is being freed).  Callbacks may start
 * and cancel operations but must not call objstore_free().
 *
 * Results (struct objstore_result), the same meaning on both backends:
 *   0             done;
 *   SL_E_NOTFOUND get or head of a key that does not exist;
 *   SL_E_EXISTS   put_if_absent found the key taken;
 *   SL_E_INVALID  a range that starts at or past the object's end (S3: 416);
 *   SL_E_TOOBIG   a get over the size cap, a listing over max_list;
 *   SL_E_REMOTE   S3 answered with another error: status, code and message
 *                 are S3's (NoSuchBucket, AccessDenied, ...);
 *   -errno        the file system failed (-EIO, -ENOSPC, -EACCES, ...);
 *   others        from the S3 client (s3.h: SL_E_TIMEOUT, SL_E_TLS, ...);
 *   SL_E_CLOSED   objstore_free() ended the operation: it may or may not
 *                 have taken effect.
 * status, code and message are 0/"" on the file backend.
 *
 * Key rules (checked the same way for both backends, so that a key that
 * works in tests works in S3 and a file name can never escape the
 * directory): 1 to OBJSTORE_KEY_MAX bytes of A-Z a-z 0-9 and "-_.=+",
 * in '/'-separated segments, none empty and none starting with '.'.  A
 * listing prefix follows the same rules but may be empty, end with '/' or
 * end inside a segment.  The file backend cannot hold a key that is also a
 * "directory" of another ("a" and "a/b"): the second put fails with
 * -ENOTDIR or -EISDIR.  Sluice's own names never do that.
 *
 * The file backend.  An object is the file DIR/KEY; a key's '/' are
 * directories, made as needed.  A put writes a temporary file beside the
 * final name (".tmp-..." in the same directory: hidden from get and list),
 * fsyncs it, renames it over the final name (put) or links it to the final
 * name (put_if_absent), and fsyncs the directory; new directories are
 * fsynced into their parents.  So after a crash at any point the key holds
 * either the old object (or nothing) or the whole new one, never part of
 * it; at worst a ".tmp-" file is left behind, which nothing reads (remove
 * them while no broker runs).  Several processes may share a directory on
 * one file system: put_if_absent stays exclusive.
 *   Its syscalls run on one I/O thread per store, an operation at a time
 * in the order started (so a put followed by a get sees the put), and
 * never on the loop: a large object's write and fsync do not stall it.
 * Cancelling an operation that the thread is running waits for it to end
 * (its buffer is the caller's).
 *
 * The s3 backend.  Every call is the s3.h operation of the same name, with
 * its retries.  put_if_absent is s3_put_if_absent (one PUT, at most
 * S3_MAX_PUT bytes); when S3 says 412, an earlier copy of the same request
 * (a retry, or a resend on a closed keep-alive connection) may have been
 * the one that created the object and only its answer was lost, so the
 * object is read back and compared: the same bytes count as success.  Servers that ignore If-None-Match (s3rver, older
 * MinIO) silently overwrite, so put_if_absent is only as exclusive as the
 * server; AWS S3 honours it.  404 NoSuchKey (and a HEAD's bare 404) become
 * SL_E_NOTFOUND; NoSuchBucket stays SL_E_REMOTE, so a missing bucket never
 * looks like an empty one.
 *
 * Ownership:
 *   - objstore_open/new copy what they need; the loop and, for s3, the
 *     credentials provider must outlive the store.
 *   - Keys and prefixes are copied by the call.  A put's buffer is borrowed:
 *     valid and unchanged until the callback starts or objstore_cancel()
 *     returns (the file backend has finished with it when the call returns).
 *   - A struct objstore_result and all it points to are valid until the
 *     callback returns; objstore_result_take_body() keeps a get's body.
 *   - An operation's handle is valid until its callback starts or
 *     objstore_cancel() returns.
 * Cancellation: no callback after objstore_cancel() returns.  What was
 * already sent may still take effect (an S3 PUT on the wire; the file
 * backend's work is already done).  objstore_free() ends every operation
 * still running with SL_E_CLOSED (callbacks run before it returns).
 */
#ifndef SL_OBJSTORE_H
#define SL_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "../kernel/err.h"
#include "../kernel/loop.h"
#include "s3.h"
#include "s3url.h"

#define OBJSTORE_KEY_MAX	512
#define OBJSTORE_GET_MAX	((size_t)256 << 20)	/* default cap of a get's body */
#define OBJSTORE_LIST_MAX	10000000u		/* default cap of a listing */

enum objstore_kind {
	OBJSTORE_FILE = 1,
	OBJSTORE_S3 = 2,
};

struct objstore;
struct objstore_op;

/* One key of a listing. */
struct objstore_entry {
	const char *key;
	uint64_t size;
	int64_t mtime_ms;		/* last modified, ms since the epoch; -1 unknown */
};

/* A key objstore_delete_many did not delete. */
struct objstore_key_error {
	const char *key;
	const char *code;		/* S3's Code, or the errno's name */
	const char *message;
};

struct objstore_result {
	int err;			/* see the top of this file */
	int status;			/* s3: the HTTP status; 0 for file */
	const char *code;		/* s3: S3's Code, or "" */
	const char *message;		/* s3: S3's Message, or "" */
	int attempts;			/* s3: attempts of the last request; file: 1 */
	/* get */
	uint8_t *body;			/* NULL when empty */
	size_t body_len;
	/* head: the object's size; get: body_len; put: bytes stored */
	uint64_t size;
	int64_t mtime_ms;		/* head: last modified; -1 unknown (S3's HEAD) */
	/* list */
	const struct objstore_entry *entries;
	size_t nentries;
	/* delete_many */
	size_t ndeleted;
	const struct objstore_key_error *key_errors;
	size_t nkey_errors;
};

typedef void (*objstore_fn)(void *arg, struct objstore_result *r);

/* An inclusive byte range. */
struct objstore_range {
	uint64_t first;
	uint64_t last;			/* >= first; past the end: cut to the end */
};

/* Zero fields take the defaults named. */
struct objstore_options {
	/* s3 */
	struct s3cred *cred;			/* borrowed: credentials provider */
	const struct s3_options *s3;		/* NULL: s3.h's defaults */
	/* file */
	size_t max_get_bytes;			/* OBJSTORE_GET_MAX */
	int create_dir;				/* 1: make the directory if missing (its
						   parent must exist) */
	/* both */
	size_t max_list;			/* OBJSTORE_LIST_MAX entries */
};

/*
 * A store for sluice.objects.url.  Returns 0 and *out; SL_E_CONFIG with a
 * message in errbuf (a URL that does not parse, a directory that does not
 * exist or is not one); SL_E_INVALID, SL_E_NOMEM or what s3_new returns.
 */
SL_MUST_CHECK int objstore_open(struct loop *l, const char *url, const struct objstore_options *o,
				struct objstore **out, char *errbuf, size_t errlen);
/* The same from a parsed URL. */
SL_MUST_CHECK int objstore_new(struct loop *l, const struct s3url *u,
			       const struct objstore_options *o, struct objstore **out,
			       char *errbuf, size_t errlen);
void objstore_free(struct objstore *os);
enum objstore_kind objstore_kind(const struct objstore *os);
/* "file:///path" or "s3://bucket/prefix": for log lines. */
const char *objstore_name(const struct objstore *os);

SL_MUST_CHECK int objstore_put(struct objstore *os, const char *key, const void *buf, size_t len,
			       objstore_fn fn, void *arg, struct objstore_op **op);
SL_MUST_CHECK int objstore_put_if_absent(struct objstore *os, const char *key, const void *buf,
					 size_t len, objstore_fn fn, void *arg,
					 struct objstore_op **op);
/* range NULL: the whole object. */
SL_MUST_CHECK int objstore_get(struct objstore *os, const char *key,
			       const struct objstore_range *range, objstore_fn fn, void *arg,
			       struct objstore_op **op);
SL_MUST_CHECK int objstore_head(struct objstore *os, const char *key, objstore_fn fn, void *arg,
				struct objstore_op **op);
SL_MUST_CHECK int objstore_delete(struct objstore *os, const char *key, objstore_fn fn, void *arg,
				  struct objstore_op **op);
/* n >= 1 keys. */
SL_MUST_CHECK int objstore_delete_many(struct objstore *os, const char *const *keys, size_t n,
				       objstore_fn fn, void *arg, struct objstore_op **op);
/* prefix NULL or "": every key. */
SL_MUST_CHECK int objstore_list(struct objstore *os, const char *prefix, objstore_fn fn, void *arg,
				struct objstore_op **op);

void objstore_cancel(struct objstore *os, struct objstore_op *op);

/* Take a get's body from r (NULL when empty); the caller free()s it. */
uint8_t *objstore_result_take_body(struct objstore_result *r, size_t *len);

/* 0 if key follows the rules above, else SL_E_INVALID. */
int objstore_key_check(const char *key);
/* The same for a listing prefix ("" allowed). */
int objstore_prefix_check(const char *prefix);

/*
 * The file backend's syscalls, replaceable by tests to inject failures
 * (a write that fails half way, an fsync that fails, a crash before the
 * rename).  Restore with objstore_file_sys_reset().
 */
struct objstore_file_sys {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*write)(int fd, const void *buf, size_t n);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	int (*fsync)(int fd);
	int (*rename)(const char *from, const char *to);
	int (*link)(const char *from, const char *to);
	int (*unlink)(const char *path);
	int (*mkdir)(const char *path, mode_t mode);
};
extern struct objstore_file_sys objstore_file_sys;
void objstore_file_sys_reset(void);

/* ---- for the backends only (objstore_file.c, objstore_s3.c) ---- */

enum objstore_opkind {
	OBJSTORE_OP_PUT,
	OBJSTORE_OP_PUT_IF_ABSENT,
	OBJSTORE_OP_GET,
	OBJSTORE_OP_HEAD,
	OBJSTORE_OP_DELETE,
	OBJSTORE_OP_DELETE_MANY,
	OBJSTORE_OP_LIST,
};

/* The arguments of one call, validated by objstore.c. */
struct objstore_call {
	enum objstore_opkind kind;
	const char *key;		/* put, get, head, delete; the prefix for list */
	const void *buf;		/* put */
	size_t len;
	const struct objstore_range *range;	/* get; NULL: whole */
	const char *const *keys;	/* delete_many */
	size_t nkeys;
	objstore_fn fn;
	void *arg;
};

struct objstore_backend {
	SL_MUST_CHECK int (*start)(struct objstore *os, const struct objstore_call *c,
				   struct objstore_op **op);
	void (*cancel)(struct objstore *os, struct objstore_op *op);
	void (*free)(struct objstore *os);
};

/* Every backend's store starts with this. */
struct objstore {
	const struct objstore_backend *be;
	struct loop *l;
	enum objstore_kind kind;
	int closing;
	size_t max_list;
	char name[S3URL_URL_MAX + 16];
};

int objstore_file_new(struct loop *l, const struct s3url *u, const struct objstore_options *o,
		      struct objstore **out, char *errbuf, size_t errlen);
int objstore_s3_new(struct loop *l, const struct s3url *u, const struct objstore_options *o,
		    struct objstore **out, char *errbuf, size_t errlen);

#endif
