/*
 * arena.c - the per-request bump allocator (see arena.h).
 *
 * Memory comes in chunks of at least ARENA_CHUNK bytes, newest first in
 * a->head.  Allocation bumps an offset in the head chunk; a request that does
 * not fit starts a new chunk, and a request larger than a normal chunk gets a
 * chunk of its own (placed behind the head, so the head's free tail is not
 * abandoned).
 *
 * Invariants:
 *   1. Every chunk's data area starts 16-byte aligned and every offset handed
 *      out is a multiple of 16, so every pointer returned is 16-byte aligned.
 *   2. a->used is the sum of requested sizes (before rounding), and the cap
 *      is checked against it: the cap bounds what a request asked for, not
 *      what the allocator's rounding and chunking happen to cost.
 *   3. Memory handed out is zero: chunks come from calloc and nothing is
 *      handed out twice.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "arena.h"

#define ARENA_ALIGN 16
#define ARENA_CHUNK (16 * 1024)

struct arena_chunk {
	struct arena_chunk *next;
	size_t size;		/* bytes in data[] */
	size_t off;		/* bytes of data[] handed out, a multiple of 16 */
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

static struct arena_chunk *chunk_new(size_t size)
{
	struct arena_chunk *c;

	if (size > SIZE_MAX - sizeof(*c))
		return NULL;
	c = calloc(1, sizeof(*c) + size);
	if (!c)
		return NULL;
	c->size = size;
	return c;
}

void *arena_alloc(struct arena *a, size_t size)
{
	struct arena_chunk *c = a->head;
	size_t rsize;
	void *p;

	if (a->cap && (size > a->cap || a->used > a->cap - size))
		return NULL;
	if (size > SIZE_MAX - (ARENA_ALIGN - 1))
		return NULL;
	/* A zero-byte request still gets a distinct, valid pointer. */
	rsize = size ? (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1) : ARENA_ALIGN;

	if (c && c->size - c->off >= rsize) {
		p = c->data + c->off;
		c->off += rsize;
		a->used += size;
		return p;
	}
	if (rsize > ARENA_CHUNK / 4) {
		/*
		 * Big enough to waste much of a fresh chunk's tail: give it its
		 * own chunk, leaving the head where it is.
		 */
		struct arena_chunk *big = chunk_new(rsize);

		if (!big)
			return NULL;
		big->off = rsize;
		if (c) {
			big->next = c->next;
			c->next = big;
		} else {
			a->head = big;
		}
		a->used += size;
		return big->data;
	}
	c = chunk_new(ARENA_CHUNK);
	if (!c)
		return NULL;
	c->next = a->head;
	a->head = c;
	c->off = rsize;
	a->used += size;
	return c->data;
}

void *arena_calloc(struct arena *a, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return arena_alloc(a, n * size);
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *d;

	if (n == SIZE_MAX)
		return NULL;
	d = arena_alloc(a, n + 1);
	if (!d)
		return NULL;
	if (n)
		memcpy(d, s, n);
	/* d[n] is already zero */
	return d;
}

void arena_free(struct arena *a)
{
	struct arena_chunk *c = a->head, *next;

	while (c) {
		next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->used = 0;
}
