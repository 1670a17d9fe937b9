/*
 * arena.h - a bump allocator for memory that lives exactly as long as one
 * request (decoded request structs, response structs, scratch).
 *
 * Allocation is cheap and nothing is freed singly; arena_free() releases
 * everything at once.  Every arena has a cap on its total size, set by the
 * caller from a configured limit, so a hostile count in a request cannot make
 * the broker allocate more than the cap: arena_alloc() returns NULL instead.
 * Memory is zeroed and aligned to 16 bytes.
 */
#ifndef SL_ARENA_H
#define SL_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head;	/* newest chunk first */
	size_t used;			/* bytes handed out, all chunks */
	size_t cap;			/* limit on used, 0 = none */
};

static inline void arena_init(struct arena *a, size_t cap)
{
	a->head = NULL;
	a->used = 0;
	a->cap = cap;
}

/* Zeroed memory valid until arena_free(); NULL when over cap or out of memory. */
void *arena_alloc(struct arena *a, size_t size);
/* n elements of size each, with overflow checked. */
void *arena_calloc(struct arena *a, size_t n, size_t size);
/* A NUL-terminated copy of n bytes. */
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* Release every allocation; the arena may be reused afterwards. */
void arena_free(struct arena *a);

#endif
