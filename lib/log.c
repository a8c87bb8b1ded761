/* lib/log.c - see log.h. One line is one write(2), so lines never interleave. */
#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The process's logging state: written at start-up and on reload, read everywhere. */
static enum hub_log_level log_level = HUB_LOG_INFO;
static int log_journald = -1; /* -1: not yet looked at JOURNAL_STREAM */

static const struct {
	const char *name;
	enum hub_log_level level;
} levels[] = {
	{ "error", HUB_LOG_ERROR },
	{ "warning", HUB_LOG_WARNING },
	{ "info", HUB_LOG_INFO },
	{ "debug", HUB_LOG_DEBUG },
};

void hub_log_set_level(enum hub_log_level level)
{
	log_level = level;
}

enum hub_log_level hub_log_get_level(void)
{
	return log_level;
}

int hub_log_level_parse(const char *name, enum hub_log_level *out)
{
	for (size_t i = 0; i < HUB_ARRAY_SIZE(levels); i++) {
		if (strcmp(levels[i].name, name) == 0) {
			*out = levels[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

const char *hub_log_level_name(enum hub_log_level level)
{
	for (size_t i = 0; i < HUB_ARRAY_SIZE(levels); i++)
		if (levels[i].level == level)
			return levels[i].name;
	return "?";
}

bool hub_log_enabled(enum hub_log_level level)
{
	return level <= log_level;
}

void hub_log_write(enum hub_log_level level, const char *tag, const char *fmt, ...)
{
	char line[2048];
	size_t n = 0;
	va_list ap;
	int r;

	if (log_journald < 0)
		log_journald = getenv("JOURNAL_STREAM") != NULL;
	if (!log_journald) {
		struct timeval tv;
		struct tm tm;

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		r = snprintf(line + n, sizeof(line) - n, ".%03dZ ", (int)(tv.tv_usec / 1000));
		n += (size_t)r;
	}
	r = snprintf(line + n, sizeof(line) - n, "<%d>[%-6s] ", (int)level, tag);
	n += (size_t)r;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r < 0)
		r = 0;
	n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	for (size_t off = 0; off < n;) {
		ssize_t w = write(STDERR_FILENO, line + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}
