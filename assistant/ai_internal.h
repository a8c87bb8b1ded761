/* assistant/ai_internal.h - what assistant.c and dialog.c share: the letters customers
 * write here (Latin and Cyrillic with the Kazakh letters) and their lower case. Not for
 * other modules. (lib/utf8 has no case mapping; the anonymizer's lives behind its own
 * internal header.) */
#ifndef HUB_AI_INTERNAL_H
#define HUB_AI_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

/* A letter of Latin (with Latin-1 and Extended-A/B) or Cyrillic (without its combining
 * signs), as the anonymizer reads them. */
bool hub_ai__is_letter(uint32_t cp);
/* The lower case of such a letter, with ё as е; any other code point as it is. */
uint32_t hub_ai__lower_cp(uint32_t cp);

#endif
