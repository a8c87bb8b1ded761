/* tests/fuzz/fuzz.h - what every libFuzzer target of tests/fuzz/fuzz_<target>.c shares: the
 * entry point, the target's name (its folder: tests/fuzz/<target>/corpus/ and regress/) and
 * the way a broken property stops the run. Built twice: by clang with libFuzzer's main
 * (`make fuzz-<target>`, mk/fuzz.mk) and by the normal build with tests/fuzz/replay.c's
 * main as $(BUILD)/tests/test_fuzz_<target>, which `make test` runs. */
#ifndef HUB_FUZZ_H
#define HUB_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* One input; returns 0 (libFuzzer's contract). A broken property aborts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "json": the folder of the target's seeds and regressions under tests/fuzz/. */
extern const char fuzz_target[];

/* A property that must hold on any input; abort() so libFuzzer keeps the input as a crash
 * and the replay fails with the message. */
#define fuzz_check(cond, ...)                                                      \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: property broken: %s: ", __FILE__,  \
				__LINE__, #cond);                                  \
			fprintf(stderr, __VA_ARGS__);                              \
			fputc('\n', stderr);                                       \
			abort();                                                   \
		}                                                                  \
	} while (0)

#endif
