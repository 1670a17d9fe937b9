/*
 * pool.c - power-of-two classes of large buffers (see pool.h).
 *
 * Below POOL_MIN the block is an ordinary malloc of exactly n bytes: musl's
 * small-block allocator already reuses memory well.  From POOL_MIN up, the
 * capacity is rounded to a power of two and freed blocks wait on their
 * class's list, linked through their own first bytes, while the cache stays
 * under POOL_MAX_CACHED.
 */
#include <stdint.h>
#include <stdlib.h>
#include "pool.h"

#define NCLASSES 48

struct free_block { struct free_block *next; };

static struct free_block *classes[NCLASSES];
static size_t cached;

static int class_of(size_t cap)
{
	return 63 - __builtin_clzll((unsigned long long)cap);
}

void *pool_get(size_t n, size_t *cap)
{
	if (n < POOL_MIN) {
		*cap = n;
		return malloc(n ? n : 1);
	}
	if (n > ((size_t)1 << 46))
		return NULL;
	size_t c = POOL_MIN;
	while (c < n)
		c <<= 1;
	int k = class_of(c);
	struct free_block *b = classes[k];
	*cap = c;
	if (b) {
		classes[k] = b->next;
		cached -= c;
		return b;
	}
	return malloc(c);
}

void pool_put(void *p, size_t cap)
{
	if (!p)
		return;
	if (cap < POOL_MIN || (cap & (cap - 1)) != 0 || cached + cap > POOL_MAX_CACHED) {
		free(p);
		return;
	}
	struct free_block *b = p;
	int k = class_of(cap);
	b->next = classes[k];
	classes[k] = b;
	cached += cap;
}

size_t pool_cached(void)
{
	return cached;
}
