/* lib/utf8.h - UTF-8 validation and decoding (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), and texts measured and split as the platforms count them.
 * Knows nothing about JSON. */
#ifndef HUB_UTF8_H
#define HUB_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* How a platform counts a text's length. An invalid byte counts as the U+FFFD that the
 * JSON writer makes of it. */
enum hub_text_unit {
	HUB_TEXT_BYTES = 1, /* bytes of UTF-8 (Instagram) */
	HUB_TEXT_UTF16,     /* UTF-16 code units: a character beyond U+FFFF counts 2 */
};

/* Length of the valid sequence at p (1..4) and its code point in *cp; 0 when the bytes at
 * p are not a valid sequence (or n is 0). */
size_t hub_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);
bool hub_utf8_valid(const void *p, size_t n);
/* Writes cp (<= U+10FFFF, not a surrogate) to out; returns its length 1..4. */
size_t hub_utf8_encode(uint32_t cp, char out[4]);

/* The length of text in unit. */
size_t hub_utf8_units(struct hub_str text, enum hub_text_unit unit);
/* The byte length of the next part of text to send under a limit of limit units: all of
 * text when it fits, else a cut never inside a character nor, when the window allows,
 * between a character and what joins it (combining mark, ZWJ, variation selector, skin
 * tone): after the last newline, else the last space, within the last fifth of the
 * window, else after the last whole character. Callers loop until text is empty. 0 only
 * for an empty text; a first character above limit is returned alone. */
size_t hub_utf8_split_next(struct hub_str text, size_t limit, enum hub_text_unit unit);

#endif
