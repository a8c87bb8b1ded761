/* daemon/core/embed.h - files compiled into the binaries at build time (scripts/embed.c):
 * the database migrations and the inbox page. Tables end with a NULL name. */
#ifndef HUB_EMBED_H
#define HUB_EMBED_H

#include "lib/embed.h"

/* The .sql files of db/migrations/, in file name order. */
extern const struct hub_embed_file hub_embedded_migrations[];
/* The files of web/ (the inbox page), in file name order. */
extern const struct hub_embed_file hub_embedded_web[];
/* api/openapi.json, the OpenAPI 3 description of /api/v1. */
extern const struct hub_embed_file hub_embedded_api[];

#endif
