/* tests/unit/test_anon_corpus.c - replays the committed fuzz corpus
 * (tests/fuzz/corpus/anon/) through the fuzz target's checks (tests/fuzz/anon_check.h),
 * so `make test` keeps what the fuzzer proved. Run from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "anonymizer/anon.h"
#include "lib/buf.h"
#include "tests/fuzz/anon_check.h"

#define CORPUS "tests/fuzz/corpus/anon"

static void test_corpus_keeps_the_properties(void **state)
{
	struct hub_anon *anon;
	DIR *d = opendir(CORPUS);
	struct dirent *de;
	int n = 0;

	(void)state;
	assert_non_null(d);
	assert_int_equal(hub_anon_new(&anon), 0);
	while ((de = readdir(d))) {
		struct hub_buf path = HUB_BUF_INIT, data = HUB_BUF_INIT;
		const char *why;

		if (de->d_name[0] == '.')
			continue;
		hub_buf_addf(&path, "%s/%s", CORPUS, de->d_name);
		assert_int_equal(hub_buf_read_file(&data, path.p), 0);
		why = anon_check(anon, data.p, data.len);
		if (why)
			fail_msg("%s: %s", path.p, why);
		n++;
		hub_buf_release(&data);
		hub_buf_release(&path);
	}
	closedir(d);
	hub_anon_free(anon);
	assert_true(n >= 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus_keeps_the_properties),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
