/* tests/fuzz/fuzz_anon.c - libFuzzer target over detect + pseudonymize + restore + guard
 * (properties in anon_check.h); `make fuzz-anon`. A slow input is a -timeout failure. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "anonymizer/anon.h"
#include "tests/fuzz/anon_check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct hub_anon *anon; /* the lexicon is built once, as hubd does */

/* Before the first input: building the lexicon (93,000 keys, seconds under ASan on a busy
 * machine) would count against the first input's -timeout. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (hub_anon_new(&anon) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why;

	why = anon_check(anon, (const char *)data, size);
	if (why) {
		fprintf(stderr, "anon_check: %s\n", why);
		abort();
	}
	return 0;
}
