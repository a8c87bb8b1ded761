/* lib/utf8.c - see utf8.h. */
#include "lib/utf8.h"

size_t hub_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
	uint32_t c, min;
	size_t len;

	if (!n)
		return 0;
	c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		len = 2, min = 0x80, c &= 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, min = 0x800, c &= 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, min = 0x10000, c &= 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

bool hub_utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t cp;

	for (size_t i = 0; i < n;) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		size_t len = hub_utf8_decode(s + i, n - i, &cp);
		if (!len)
			return false;
		i += len;
	}
	return true;
}

size_t hub_utf8_encode(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The character at p (n > 0): its length, and U+FFFD for a byte that starts no valid
 * sequence (the JSON writer sends it so). */
static size_t next_char(const unsigned char *p, size_t n, uint32_t *cp)
{
	size_t len = hub_utf8_decode(p, n, cp);

	if (len)
		return len;
	*cp = 0xfffd;
	return 1;
}

static size_t char_units(uint32_t cp, enum hub_text_unit unit)
{
	if (unit == HUB_TEXT_UTF16)
		return cp > 0xffff ? 2 : 1;
	return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

size_t hub_utf8_units(struct hub_str text, enum hub_text_unit unit)
{
	const unsigned char *p = (const unsigned char *)text.p;
	size_t units = 0;
	uint32_t cp;

	for (size_t i = 0; i < text.len;) {
		i += next_char(p + i, text.len - i, &cp);
		units += char_units(cp, unit);
	}
	return units;
}

/* Characters that belong to the one before them on screen: combining marks, variation
 * selectors, emoji skin tones, tag characters (subdivision flags). */
static bool extends(uint32_t cp)
{
	return (cp >= 0x300 && cp <= 0x36f) || (cp >= 0x1ab0 && cp <= 0x1aff) ||
	       (cp >= 0x1dc0 && cp <= 0x1dff) || (cp >= 0x20d0 && cp <= 0x20ff) ||
	       (cp >= 0xfe00 && cp <= 0xfe0f) || (cp >= 0xfe20 && cp <= 0xfe2f) ||
	       (cp >= 0x1f3fb && cp <= 0x1f3ff) || (cp >= 0xe0020 && cp <= 0xe007f) ||
	       (cp >= 0xe0100 && cp <= 0xe01ef);
}

size_t hub_utf8_split_next(struct hub_str text, size_t limit, enum hub_text_unit unit)
{
	const unsigned char *p = (const unsigned char *)text.p;
	size_t used = 0, min = limit - limit / 5;
	size_t any = 0, whole = 0, space = 0, line = 0; /* the last cut of each kind */
	uint32_t prev = 0, cp;
	size_t len;

	for (size_t i = 0; i < text.len; i += len) {
		len = next_char(p + i, text.len - i, &cp);
		if (i > 0) {
			/* a cut here keeps prev and leaves cp for the next part */
			any = i;
			if (prev != 0x200d && cp != 0x200d && !extends(cp)) {
				whole = i;
				if (used >= min && prev == '\n')
					line = i;
				else if (used >= min && prev == ' ')
					space = i;
			}
		}
		used += char_units(cp, unit);
		if (used > limit)
			return line ? line : space ? space : whole ? whole : any ? any : len;
		prev = cp;
	}
	return text.len;
}
