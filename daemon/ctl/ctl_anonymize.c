/* daemon/ctl/ctl_anonymize.c - see ctl_anonymize.h. */
#include "daemon/ctl/ctl_anonymize.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anonymizer/anon.h"
#include "anonymizer/anon_vault.h"
#include "lib/json.h"

#define USAGE "usage: hubctl anonymize [--json] [--known-name NAME]... " \
	      "[--known-phone P]... [--known-email E]...\n"

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

int hubctl_anonymize_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "known-name", required_argument, NULL, 'n' },
		{ "known-phone", required_argument, NULL, 'p' },
		{ "known-email", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	struct hub_anon *anon = NULL;
	struct hub_anon_vault *vault = NULL;
	struct hub_buf out = HUB_BUF_INIT, json = HUB_BUF_INIT;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	bool as_json = false;
	int opt, ret = 2;

	if (hub_anon_new(&anon) < 0 || hub_anon_vault_new(anon, &vault) < 0) {
		fprintf(stderr, "hubctl: anonymize: cannot build the lexicon\n");
		ret = 1;
		goto out;
	}
	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		enum hub_anon_type type = HUB_ANON_NAME;

		switch (opt) {
		case 'j':
			as_json = true;
			continue;
		case 'n': type = HUB_ANON_NAME; break;
		case 'p': type = HUB_ANON_PHONE; break;
		case 'e': type = HUB_ANON_EMAIL; break;
		default:
			fputs(USAGE, stderr);
			goto out;
		}
		if (hub_anon_vault_add_known(vault, type, hub_str_from(optarg)) < 0) {
			fprintf(stderr, "hubctl: anonymize: --%s: not a usable %s\n",
				opts[opt == 'n' ? 1 : opt == 'p' ? 2 : 3].name,
				hub_anon_type_name(type));
			goto out;
		}
	}
	if (optind != argc) {
		fputs(USAGE, stderr);
		goto out;
	}
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		struct hub_pool pool = HUB_POOL_INIT;
		struct hub_anon_entity *ents;
		struct hub_str text = { line, (size_t)len };
		size_t n;

		if (text.len && text.p[text.len - 1] == '\n')
			text.len--;
		hub_buf_reset(&out);
		if (hub_anon_vault_pseudonymize(vault, &pool, text, &out, &ents, &n) < 0) {
			fprintf(stderr, "hubctl: anonymize: line longer than %u bytes\n",
				HUB_ANON_TEXT_MAX);
			hub_pool_release(&pool);
			ret = 1;
			goto out;
		}
		if (as_json) {
			hub_buf_reset(&json);
			write_json(&json, hub_buf_str(&out), ents, n);
			fwrite(json.p, 1, json.len, stdout);
		} else {
			fwrite(out.p, 1, out.len, stdout);
		}
		putchar('\n');
		hub_pool_release(&pool);
	}
	ret = ferror(stdin) ? 1 : 0;
	if (ret)
		fprintf(stderr, "hubctl: anonymize: reading stdin: %s\n", strerror(errno));
	if (fflush(stdout) != 0)
		ret = 1;
out:
	free(line);
	hub_buf_release(&json);
	hub_buf_release(&out);
	hub_anon_vault_free(vault);
	hub_anon_free(anon);
	return ret;
}
