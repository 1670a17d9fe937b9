/*
 * test_arena.c - alignment, zeroing, the cap on requested bytes, big
 * requests, overflow in arena_calloc, reuse after arena_free.
 */
#include <stdlib.h>
#include "tests/unit/t.h"
#include "kernel/arena.h"

const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

static int all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i])
			return 0;
	return 1;
}

static void test_align_zero(void)
{
	struct arena a;
	size_t sizes[] = { 1, 3, 16, 17, 100, 0, 5000, 7, 40000, 1, 15000, 2 };
	void *ps[sizeof(sizes) / sizeof(sizes[0])];
	size_t i, j, total = 0;

	arena_init(&a, 0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ps[i] = arena_alloc(&a, sizes[i]);
		T_CHECK(ps[i] != NULL);
		if (!ps[i])
			continue;
		T_EQ((uintptr_t)ps[i] % 16, 0);
		T_CHECK(all_zero(ps[i], sizes[i]));
		memset(ps[i], 0xa5, sizes[i]);
		total += sizes[i];
	}
	T_EQ(a.used, total);
	/* no two allocations overlap, zero-sized ones included */
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (j = i + 1; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
			uintptr_t a0 = (uintptr_t)ps[i], a1 = a0 + (sizes[i] ? sizes[i] : 1);
			uintptr_t b0 = (uintptr_t)ps[j], b1 = b0 + (sizes[j] ? sizes[j] : 1);
			T_CHECK(a1 <= b0 || b1 <= a0);
		}
	arena_free(&a);
	T_CHECK(a.head == NULL);
	T_EQ(a.used, 0);
}

static void test_many_small(void)
{
	struct arena a;
	int i;
	uint64_t *p[10000];

	arena_init(&a, 0);
	for (i = 0; i < 10000; i++) {
		p[i] = arena_alloc(&a, sizeof(uint64_t));
		if (!p[i])
			break;
		*p[i] = (uint64_t)i;
	}
	T_EQ(i, 10000);
	for (i = 0; i < 10000; i++)
		if (*p[i] != (uint64_t)i)
			break;
	T_EQ(i, 10000);
	arena_free(&a);
}

static void test_cap(void)
{
	struct arena a;
	void *p;

	arena_init(&a, 100);
	T_CHECK(arena_alloc(&a, 60) != NULL);
	T_CHECK(arena_alloc(&a, 41) == NULL);
	T_EQ(a.used, 60);
	/* the cap counts requested bytes, not the rounded-up ones */
	T_CHECK(arena_alloc(&a, 40) != NULL);
	T_EQ(a.used, 100);
	T_CHECK(arena_alloc(&a, 1) == NULL);
	T_CHECK(arena_alloc(&a, SIZE_MAX) == NULL);
	arena_free(&a);
	/* reuse: the cap still applies, counting from zero */
	p = arena_alloc(&a, 100);
	T_CHECK(p != NULL);
	T_CHECK(arena_alloc(&a, 1) == NULL);
	arena_free(&a);

	arena_init(&a, 1 << 20);
	T_CHECK(arena_alloc(&a, (1 << 20) + 1) == NULL);
	p = arena_alloc(&a, 1 << 20);
	T_CHECK(p != NULL);
	if (p)
		T_CHECK(all_zero(p, 1 << 20));
	arena_free(&a);
}

static void test_calloc_overflow(void)
{
	struct arena a;
	int32_t *v;

	arena_init(&a, 0);
	T_CHECK(arena_calloc(&a, SIZE_MAX / 2, 4) == NULL);
	T_CHECK(arena_calloc(&a, (SIZE_MAX / 8) + 1, 8) == NULL);
	T_CHECK(arena_alloc(&a, SIZE_MAX) == NULL);
	T_CHECK(arena_alloc(&a, SIZE_MAX - 8) == NULL);
	T_EQ(a.used, 0);
	v = arena_calloc(&a, 1000, sizeof(*v));
	T_CHECK(v != NULL);
	if (v)
		T_CHECK(all_zero(v, 1000 * sizeof(*v)));
	T_CHECK(arena_calloc(&a, 0, 8) != NULL);
	/* a hostile count against a cap is refused before any allocation */
	arena_free(&a);
	arena_init(&a, 4096);
	T_CHECK(arena_calloc(&a, 0x7fffffff, 16) == NULL);
	T_EQ(a.used, 0);
	T_CHECK(a.head == NULL);
	arena_free(&a);
}

static void test_strndup(void)
{
	struct arena a;
	char *s;

	arena_init(&a, 0);
	s = arena_strndup(&a, "hello world", 5);
	T_CHECK(s != NULL);
	if (s)
		T_CHECK(strcmp(s, "hello") == 0);
	s = arena_strndup(&a, NULL, 0);
	T_CHECK(s != NULL);
	if (s)
		T_EQ(s[0], 0);
	/* bytes after an embedded NUL are copied too: n is the length */
	s = arena_strndup(&a, "a\0b", 3);
	T_CHECK(s != NULL);
	if (s)
		T_MEMEQ(s, "a\0b\0", 4);
	T_CHECK(arena_strndup(&a, "x", SIZE_MAX) == NULL);
	arena_free(&a);
}

static void test_big_keeps_head(void)
{
	struct arena a;
	char *p1, *big, *p2;

	arena_init(&a, 0);
	p1 = arena_alloc(&a, 32);
	big = arena_alloc(&a, 100000);
	p2 = arena_alloc(&a, 32);
	T_CHECK(p1 && big && p2);
	/* the small one after a big one continues in the first chunk */
	T_CHECK(p2 == p1 + 32);
	arena_free(&a);
}

int main(void)
{
	T_RUN(test_align_zero);
	T_RUN(test_many_small);
	T_RUN(test_cap);
	T_RUN(test_calloc_overflow);
	T_RUN(test_strndup);
	T_RUN(test_big_keeps_head);
	return t_done();
}
