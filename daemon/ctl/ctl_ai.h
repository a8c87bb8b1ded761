/* daemon/ctl/ctl_ai.h - `hubctl channel ai ID [settings]`: shows or changes a channel's
 * assistant (db/migrations/0010_assistant.sql, blocking libpq). Every setting is checked
 * before anything is sent, so bad input changes nothing; the API key is read from a file
 * and shown only by its last four characters. Running hubds read the settings for each
 * answer: a change applies from the next one. */
#ifndef HUB_CTL_AI_H
#define HUB_CTL_AI_H

struct hub_config;

/* argv[0] is "ai" (after "channel"). Returns the exit code: 0 done, 1 refused or failed
 * (nothing changed), 2 bad usage. */
int hubctl_channel_ai_main(const struct hub_config *cfg, int argc, char **argv);

#endif
