/* lib/embed.h - one file compiled into the binaries at build time by scripts/embed.c (the
 * migrations, the inbox page, the anonymizer's name lists). The tables themselves are
 * declared by the modules that use them; each ends with a NULL name. */
#ifndef HUB_LIB_EMBED_H
#define HUB_LIB_EMBED_H

#include <stddef.h>

struct hub_embed_file {
	const char *name; /* base name, e.g. "0001_init.sql" */
	const char *data; /* NUL-terminated */
	size_t len;
	const char *etag; /* "\"<16 hex digits>\"": FNV-1a 64 of the bytes, an HTTP ETag */
};

#endif
