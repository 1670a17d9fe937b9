/*
 * t.h - the unit-test harness: one file per module, one binary each.
 *
 *     static void test_roundtrip(void) { T_EQ(1 + 1, 2); }
 *     int main(void) { T_RUN(test_roundtrip); return t_done(); }
 *
 * Each T_RUN prints "ok <file> <name>" or "FAIL <file> <name>" with the
 * failing checks above it; tests/run.sh counts those lines.  A failed check
 * does not stop the test, so one run shows every failure.
 */
#ifndef SL_T_H
#define SL_T_H

#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <inttypes.h>

static int t_failed_checks;
static int t_passed, t_failed;

#define T_CHECK(c) do { if (!(c)) { t_failed_checks++; \
	fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #c); } } while (0)
#define T_EQ(a, b) do { long long t_a_ = (long long)(a), t_b_ = (long long)(b); \
	if (t_a_ != t_b_) { t_failed_checks++; fprintf(stderr, \
	"  %s:%d: %s == %s: %lld != %lld\n", __FILE__, __LINE__, #a, #b, t_a_, t_b_); } } while (0)
#define T_MEMEQ(a, b, n) do { if (memcmp((a), (b), (n)) != 0) { t_failed_checks++; \
	fprintf(stderr, "  %s:%d: bytes differ: %s vs %s\n", __FILE__, __LINE__, #a, #b); } } while (0)
#define T_STR_EQ(a, b) do { const char *t_sa_ = (a), *t_sb_ = (b); \
	if (strcmp(t_sa_, t_sb_) != 0) { t_failed_checks++; fprintf(stderr, \
	"  %s:%d: %s == %s: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a, #b, t_sa_, t_sb_); } } while (0)

#define T_RUN(fn) do { int t_before_ = t_failed_checks; fn(); \
	if (t_failed_checks == t_before_) { t_passed++; printf("ok %s %s\n", __FILE__, #fn); } \
	else { t_failed++; printf("FAIL %s %s\n", __FILE__, #fn); } fflush(stdout); } while (0)

static inline int t_done(void) { return t_failed ? 1 : 0; }

#endif
