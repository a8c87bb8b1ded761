/* tests/fuzz/replay.c - main() of a fuzz target outside libFuzzer: every file of
 * tests/fuzz/<target>/corpus/ and tests/fuzz/<target>/regress/ goes through the target's
 * LLVMFuzzerTestOneInput, so `make test` keeps what the fuzzers found and proved. Linked
 * with each tests/fuzz/fuzz_<target>.c as $(BUILD)/tests/test_fuzz_<target> (mk/fuzz.mk);
 * cmocka output, one test per folder. Run from the repository root; with arguments it
 * replays those files or folders instead (a crash found by `make fuzz-<target>`, under gcc
 * or build-asan/). Each input is named on stdout before it runs, so the last name printed
 * before a sanitizer report is the culprit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/buf.h"
#include "tests/fuzz/fuzz.h"

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_file(const char *path)
{
	struct hub_buf data = HUB_BUF_INIT;
	uint8_t *copy;

	if (hub_buf_read_file(&data, path) < 0) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		abort();
	}
	printf("replay %s (%zu bytes)\n", path, data.len);
	fflush(stdout);
	/* An exact-size copy, as libFuzzer gives: a read past the end is caught. */
	copy = hub_xmalloc(data.len ? data.len : 1);
	memcpy(copy, data.p, data.len);
	LLVMFuzzerTestOneInput(copy, data.len);
	free(copy);
	hub_buf_release(&data);
}

/* Replays the files of dir in name order; returns how many (0 when dir is missing). */
static size_t replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			names = hub_xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = hub_xstrdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		struct hub_buf path = HUB_BUF_INIT;

		hub_buf_addf(&path, "%s/%s", dir, names[i]);
		replay_file(path.p);
		hub_buf_release(&path);
		free(names[i]);
	}
	free(names);
	return n;
}

static size_t replay_sub(const char *sub)
{
	struct hub_buf dir = HUB_BUF_INIT;
	size_t n;

	hub_buf_addf(&dir, "tests/fuzz/%s/%s", fuzz_target, sub);
	n = replay_dir(dir.p);
	hub_buf_release(&dir);
	return n;
}

static void test_corpus(void **state)
{
	(void)state;
	assert_true(replay_sub("corpus") > 0); /* the seeds are there */
}

static void test_regress(void **state)
{
	(void)state;
	replay_sub("regress"); /* may be empty */
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_regress),
	};

	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			struct stat st;

			if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
				replay_dir(argv[i]);
			else
				replay_file(argv[i]);
		}
		return 0;
	}
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
