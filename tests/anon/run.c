/* tests/anon/run.c - the eval's driver (tests/anon/eval): `hubctl anonymize --json` with
 * a new vault whenever the input asks for one, so each corpus line can be one customer's
 * message with its own vault and each conversation one vault, as hubd has them, in one
 * process (a process per line is too slow under ASan).
 * Input, one line each: a text to pseudonymize (answered by one JSON line, as hubctl's:
 * {"text", "entities": [{"type", "start", "end", "marker"}]}), or a control line starting
 * with \x01 (never in a chat line of the corpora), not answered:
 *   \x01            a new, empty vault for the lines that follow
 *   \x01n VALUE     add a known name to the current vault (p: a phone, e: an e-mail)
 * Exit 0, 1 on a refused known value or text, 2 on a usage error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anonymizer/anon.h"
#include "anonymizer/anon_vault.h"
#include "lib/json.h"

static void write_json(struct hub_buf *b, struct hub_str text,
		       const struct hub_anon_entity *ents, size_t n)
{
	struct hub_jw w;

	hub_jw_init(&w, b);
	hub_jw_obj_open(&w);
	hub_jw_key(&w, "text");
	hub_jw_str(&w, text);
	hub_jw_key(&w, "entities");
	hub_jw_arr_open(&w);
	for (size_t i = 0; i < n; i++) {
		hub_jw_obj_open(&w);
		hub_jw_key(&w, "type");
		hub_jw_cstr(&w, hub_anon_type_name(ents[i].type));
		hub_jw_key(&w, "start");
		hub_jw_int(&w, (int64_t)ents[i].start);
		hub_jw_key(&w, "end");
		hub_jw_int(&w, (int64_t)ents[i].end);
		hub_jw_key(&w, "marker");
		hub_jw_str(&w, ents[i].marker);
		hub_jw_obj_close(&w);
	}
	hub_jw_arr_close(&w);
	hub_jw_obj_close(&w);
}

static int control(const struct hub_anon *anon, struct hub_anon_vault **vault,
		   struct hub_str line)
{
	enum hub_anon_type type;

	if (line.len == 1) {
		hub_anon_vault_free(*vault);
		*vault = NULL;
		return hub_anon_vault_new(anon, vault);
	}
	if (line.len < 3 || line.p[2] != ' ')
		return -EINVAL;
	switch (line.p[1]) {
	case 'n': type = HUB_ANON_NAME; break;
	case 'p': type = HUB_ANON_PHONE; break;
	case 'e': type = HUB_ANON_EMAIL; break;
	default: return -EINVAL;
	}
	return hub_anon_vault_add_known(*vault, type,
					(struct hub_str){ line.p + 3, line.len - 3 });
}

int main(int argc, char **argv)
{
	struct hub_anon *anon = NULL;
	struct hub_anon_vault *vault = NULL;
	struct hub_buf out = HUB_BUF_INIT, json = HUB_BUF_INIT;
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	int ret = 1;

	(void)argv;
	if (argc != 1) {
		fputs("usage: run < LINES (tests/anon/run.c says what they hold)\n", stderr);
		return 2;
	}
	if (hub_anon_new(&anon) < 0 || hub_anon_vault_new(anon, &vault) < 0) {
		fputs("run: cannot build the lexicon\n", stderr);
		goto out;
	}
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		struct hub_pool pool = HUB_POOL_INIT;
		struct hub_anon_entity *ents;
		struct hub_str text = { line, (size_t)len };
		size_t n;

		lineno++;
		if (text.len && text.p[text.len - 1] == '\n')
			text.len--;
		if (text.len && text.p[0] == '\x01') {
			if (control(anon, &vault, text) < 0) {
				fprintf(stderr, "run: line %zu: a refused control line\n", lineno);
				goto out;
			}
			continue;
		}
		hub_buf_reset(&out);
		if (hub_anon_vault_pseudonymize(vault, &pool, text, &out, &ents, &n) < 0) {
			fprintf(stderr, "run: line %zu: longer than %u bytes\n", lineno,
				HUB_ANON_TEXT_MAX);
			hub_pool_release(&pool);
			goto out;
		}
		hub_buf_reset(&json);
		write_json(&json, hub_buf_str(&out), ents, n);
		hub_buf_addch(&json, '\n');
		fwrite(json.p, 1, json.len, stdout);
		hub_pool_release(&pool);
	}
	if (ferror(stdin)) {
		fprintf(stderr, "run: reading stdin: %s\n", strerror(errno));
		goto out;
	}
	ret = fflush(stdout) != 0;
out:
	free(line);
	hub_buf_release(&json);
	hub_buf_release(&out);
	hub_anon_vault_free(vault);
	hub_anon_free(anon);
	return ret;
}
