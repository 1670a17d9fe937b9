/*
 * pool.h - a cache of large buffers (64 KiB and up), so request frames and
 * reply buffers are not mapped and unmapped for every request.
 *
 * musl's malloc serves large blocks with mmap and returns them with munmap,
 * so each 1 MiB produce request used to cost 256 fresh page faults for its
 * frame alone.  The pool keeps freed blocks in power-of-two size classes, up
 * to a total of POOL_MAX_CACHED bytes, and hands them out again.  Blocks come
 * back dirty: callers overwrite what they use.
 *
 * One thread, no locks.  pool_put() must get the capacity pool_get()
 * reported.
 */
#ifndef SL_POOL_H
#define SL_POOL_H

#include <stddef.h>

#define POOL_MIN ((size_t)64 << 10)
#define POOL_MAX_CACHED ((size_t)256 << 20)

/* A block of at least n bytes; its real capacity goes to *cap.  NULL on failure. */
void *pool_get(size_t n, size_t *cap);
/* Return a block; it is cached or freed. */
void pool_put(void *p, size_t cap);
/* Bytes currently cached (for tests and metrics). */
size_t pool_cached(void);

#endif
