/* tests/fuzz/anon_check.h - the properties the anonymizer keeps on any input, checked by
 * the libFuzzer driver (fuzz_anon.c) and by the unit test that replays its corpus. */
#ifndef HUB_ANON_CHECK_H
#define HUB_ANON_CHECK_H

#include <stddef.h>

struct hub_anon;

/* Runs detect, pseudonymize, restore and the guard over data with a fresh vault (the
 * first line, when data has several, is also given as a known name and phone); a '\f'
 * separates the messages of one conversation, each given to that vault in turn. Returns
 * NULL when every property holds in every message, else what failed:
 *  - spans are sorted, disjoint, inside the text and on UTF-8 character boundaries;
 *  - restore(pseudonymize(x)) is x with each value in the vault's first spelling, and is
 *    x itself when each value was spelled one way (marker-like text of x included);
 *  - no value of the vault survives in the pseudonymized text (hub_anon_vault_leaks). */
const char *anon_check(const struct hub_anon *anon, const char *data, size_t n);

#endif
