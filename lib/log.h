/* lib/log.h - level-gated logging to stderr with a module tag.
 * Lines start with a syslog priority prefix (<3> error ... <7> debug) that journald reads;
 * outside journald a UTC timestamp goes first. Never log a message text, a token, a secret,
 * a phone number or raw bytes: ids and sizes only. */
#ifndef HUB_LOG_H
#define HUB_LOG_H

#include <stdbool.h>

#include "lib/mem.h"

enum hub_log_level {
	HUB_LOG_ERROR = 3,   /* someone should look */
	HUB_LOG_WARNING = 4, /* degraded but served */
	HUB_LOG_INFO = 6,    /* lifecycle */
	HUB_LOG_DEBUG = 7,   /* per request */
};

/* The process's log state: level and whether journald reads stderr (JOURNAL_STREAM). */
void hub_log_set_level(enum hub_log_level level);
enum hub_log_level hub_log_get_level(void);
/* "error", "warning", "info", "debug" → 0 and *out; else -EINVAL. */
int hub_log_level_parse(const char *name, enum hub_log_level *out) HUB_MUSTCHECK;
const char *hub_log_level_name(enum hub_log_level level);
bool hub_log_enabled(enum hub_log_level level);

void hub_log_write(enum hub_log_level level, const char *tag, const char *fmt, ...)
	HUB_PRINTF(3, 4);

#define hub_log(level, tag, ...)                                 \
	do {                                                     \
		if (hub_log_enabled(level))                      \
			hub_log_write(level, tag, __VA_ARGS__);  \
	} while (0)
#define hub_log_err(tag, ...) hub_log(HUB_LOG_ERROR, tag, __VA_ARGS__)
#define hub_log_warn(tag, ...) hub_log(HUB_LOG_WARNING, tag, __VA_ARGS__)
#define hub_log_info(tag, ...) hub_log(HUB_LOG_INFO, tag, __VA_ARGS__)
#define hub_log_debug(tag, ...) hub_log(HUB_LOG_DEBUG, tag, __VA_ARGS__)

#endif
