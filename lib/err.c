/* lib/err.c - see err.h. */
#include "lib/err.h"

#include <stdarg.h>
#include <stdio.h>

int hub_err_set(struct hub_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

void hub_err_clear(struct hub_err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}
