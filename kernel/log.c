/*
 * log.c - levelled logging to stderr (see log.h).
 *
 * Owns: the current level, a process-wide setting.
 * Invariants:
 *   1. Each line is formatted completely into a stack buffer and handed to
 *      the kernel with one write(2) on fd 2, so lines from different threads
 *      never interleave.  No stdio: its buffering would split or merge lines,
 *      and it is not safe to mix with direct writes on the same fd.
 *   2. A line is at most LOG_LINE_MAX bytes including its newline; longer
 *      messages are cut and the newline is always kept.
 *   3. Logging never fails visibly: a full pipe or closed stderr loses the
 *      line, nothing else.  errno is preserved so callers can log between a
 *      failing syscall and their use of errno.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "err.h"
#include "log.h"

#define LOG_LINE_MAX 1024

static enum log_level log_level = LOG_INFO;

/* Padded to one width so messages line up on the console. */
static const char *const level_names[] = {
	[LOG_DEBUG] = "DEBUG",
	[LOG_INFO] = "INFO ",
	[LOG_WARN] = "WARN ",
	[LOG_ERROR] = "ERROR",
};

void log_set_level(enum log_level level)
{
	if (level >= LOG_DEBUG && level <= LOG_ERROR)
		log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

int log_parse_level(const char *s, enum log_level *level)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
		{ "debug", LOG_DEBUG },
		{ "info", LOG_INFO },
		{ "warn", LOG_WARN },
		{ "error", LOG_ERROR },
	};
	size_t i;

	if (!s)
		return SL_E_INVALID;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*level = names[i].level;
			return 0;
		}
	}
	return SL_E_INVALID;
}

/* "2026-11-22T04:05:06.789Z" into b (at least 32 bytes); returns its length. */
static size_t log_timestamp(char *b, size_t n)
{
	struct timespec ts;
	struct tm tm;
	int len;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1) {
		ts.tv_sec = 0;
		ts.tv_nsec = 0;
	}
	if (!gmtime_r(&ts.tv_sec, &tm))
		memset(&tm, 0, sizeof(tm));
	len = snprintf(b, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		       tm.tm_hour, tm.tm_min, tm.tm_sec,
		       (int)(ts.tv_nsec / 1000000));
	if (len < 0)
		return 0;
	return (size_t)len < n ? (size_t)len : n - 1;
}

void log_msg(enum log_level level, const char *tag, const char *fmt, ...)
{
	char line[LOG_LINE_MAX + 1];
	/* snprintf needs one byte for its NUL; the newline replaces it at the end */
	const size_t room = sizeof(line) - 1;
	size_t len;
	int saved_errno = errno;
	int n;
	va_list ap;

	if (level < log_level || level > LOG_ERROR)
		return;

	len = log_timestamp(line, room);
	n = snprintf(line + len, room - len, " %s %s%s%s", level_names[level],
		     tag ? "[" : "", tag ? tag : "", tag ? "] " : "");
	if (n > 0)
		len += (size_t)n < room - len ? (size_t)n : room - len - 1;

	va_start(ap, fmt);
	n = vsnprintf(line + len, room - len, fmt, ap);
	va_end(ap);
	if (n > 0)
		len += (size_t)n < room - len ? (size_t)n : room - len - 1;
	line[len++] = '\n';

	/* One attempt (plus EINTR): a short write loses the tail, see 3. */
	while (write(2, line, len) == -1 && errno == EINTR)
		;
	errno = saved_errno;
}
