/* lib/channel.h - a channel as the adapters see it: one company's account on one platform,
 * with the secrets that authenticate its webhooks and its sends. A value: built by config/
 * (or, later, from the database), read by adapters/ and daemon/, never changed after it is
 * published in a snapshot. */
#ifndef HUB_CHANNEL_H
#define HUB_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>

enum hub_channel_kind {
	HUB_CHANNEL_WHATSAPP = 1,
	HUB_CHANNEL_TELEGRAM,
	HUB_CHANNEL_INSTAGRAM,
	HUB_CHANNEL_WEB,  /* the website chat (daemon/webchat/): no adapter, no platform */
};

struct hub_channel {
	const char *id;           /* public id, as in URLs: "demo-whatsapp" */
	const char *tenant;       /* tenant id: "demo" */
	enum hub_channel_kind kind;
	const char *account_id;   /* WhatsApp phone_number_id, Instagram account id, bot id */
	const char *app_secret;   /* Meta app secret (X-Hub-Signature-256), Telegram secret_token */
	const char *verify_token; /* Meta's GET handshake */
	const char *access_token; /* for the send API */
	const char *web;          /* kind web: the widget's settings, JSON (lib/webcfg.h);
				   * app_secret is then the identity-verification secret */
	bool polling;             /* Telegram: updates by getUpdates long polling, no webhook */
	bool enabled;
};

/* What hubctl and the admin API accept (the same rules in both places):
 * a channel's or tenant's id: 1 to HUB_CHANNEL_ID_MAX of a-z, 0-9, '-' and '_'. */
#define HUB_CHANNEL_ID_MAX 64
#define HUB_CHANNEL_ACCOUNT_MAX 128
#define HUB_CHANNEL_SECRET_MAX 4096
bool hub_channel_id_valid(const char *s, size_t n);
/* An account id (WhatsApp phone_number_id, Instagram account id, Telegram bot id): 1 to
 * HUB_CHANNEL_ACCOUNT_MAX printable ASCII characters without spaces. */
bool hub_channel_account_valid(const char *s, size_t n);
/* A secret (app secret, verify token, access token, API key): 1 to HUB_CHANNEL_SECRET_MAX
 * bytes of UTF-8 without control characters. */
bool hub_channel_secret_valid(const char *s, size_t n);
/* Telegram's setWebhook secret_token (a telegram channel's app secret): 1 to 256 of
 * A-Z a-z 0-9 _ -. */
bool hub_channel_telegram_secret_valid(const char *s, size_t n);
/* What people may see of a secret: its last four characters when it has at least 16 (as
 * the assistants' api_key_hint), else "" (out holds 5 bytes). */
void hub_channel_secret_hint(const char *s, size_t n, char out[5]);

/* "whatsapp" → HUB_CHANNEL_WHATSAPP ...; 0 when unknown. */
enum hub_channel_kind hub_channel_kind_parse(const char *name);
const char *hub_channel_kind_name(enum hub_channel_kind kind);

#endif
