/*
 * log.h - levelled logging to stderr, which is the serial console when
 * Sluice is PID 1.
 *
 * One line per event: "2026-11-22T04:05:06.789Z INFO  [wal] message".
 * Lines are written with a single write(2) so concurrent writers (there are
 * none today, but helper threads such as a DNS resolver may log) never
 * interleave within a line.  Lines longer than 1024 bytes are truncated.
 */
#ifndef SL_LOG_H
#define SL_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Lines below level are dropped.  Default LOG_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "debug", "info", "warn", "error" -> 0 and *level, else SL_E_INVALID. */
int log_parse_level(const char *s, enum log_level *level);

void log_msg(enum log_level level, const char *tag, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(tag, ...) log_msg(LOG_DEBUG, tag, __VA_ARGS__)
#define log_info(tag, ...)  log_msg(LOG_INFO, tag, __VA_ARGS__)
#define log_warn(tag, ...)  log_msg(LOG_WARN, tag, __VA_ARGS__)
#define log_error(tag, ...) log_msg(LOG_ERROR, tag, __VA_ARGS__)

#endif
