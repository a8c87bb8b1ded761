/* daemon/ctl/ctl_anonymize.h - `hubctl anonymize`: pseudonymizes stdin line by line with one
 * vault for the whole run (anonymizer/anon_vault.h). Knows nothing about hubd. */
#ifndef HUB_CTL_ANONYMIZE_H
#define HUB_CTL_ANONYMIZE_H

/* argv[0] is "anonymize": `anonymize [--json] [--known-name NAME]... [--known-phone P]...
 * [--known-email E]...`. Prints one line per input line: the pseudonymized text, or with
 * --json {"text":...,"entities":[{"type","start","end","marker"}]} with byte offsets into
 * the input line. Returns the exit code: 0, 1 on a read error, 2 on bad usage. */
int hubctl_anonymize_main(int argc, char **argv);

#endif
