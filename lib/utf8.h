/* lib/utf8.h - UTF-8 validation and decoding (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF). Knows nothing about JSON. */
#ifndef HUB_UTF8_H
#define HUB_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid sequence at p (1..4) and its code point in *cp; 0 when the bytes at
 * p are not a valid sequence (or n is 0). */
size_t hub_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);
bool hub_utf8_valid(const void *p, size_t n);
/* Writes cp (<= U+10FFFF, not a surrogate) to out; returns its length 1..4. */
size_t hub_utf8_encode(uint32_t cp, char out[4]);

#endif
