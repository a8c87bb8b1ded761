/* tests/fuzz/fuzz_anon.c - libFuzzer target over detect + pseudonymize + restore + guard
 * (properties in anon_check.h); `make fuzz-anon`. A slow input is a -timeout failure. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "anonymizer/anon.h"
#include "tests/fuzz/anon_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hub_anon *anon; /* the lexicon is built once, as hubd does */
	const char *why;

	if (!anon && hub_anon_new(&anon) < 0)
		abort();
	why = anon_check(anon, (const char *)data, size);
	if (why) {
		fprintf(stderr, "anon_check: %s\n", why);
		abort();
	}
	return 0;
}
