/* anonymizer/anon_data.h - the name lists of anonymizer/data/ compiled into libhubcore.a
 * (build/gen/anon_data.c, written by scripts/embed.c). Knows nothing about their format. */
#ifndef HUB_ANON_DATA_H
#define HUB_ANON_DATA_H

#include "lib/embed.h"

/* Ends with a NULL name. */
extern const struct hub_embed_file hub_anon_data[];

#endif
