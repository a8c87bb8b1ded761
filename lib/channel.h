/* lib/channel.h - a channel as the adapters see it: one company's account on one platform,
 * with the secrets that authenticate its webhooks and its sends. A value: built by config/
 * (or, later, from the database), read by adapters/ and daemon/, never changed after it is
 * published in a snapshot. */
#ifndef HUB_CHANNEL_H
#define HUB_CHANNEL_H

#include <stdbool.h>

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

/* "whatsapp" → HUB_CHANNEL_WHATSAPP ...; 0 when unknown. */
enum hub_channel_kind hub_channel_kind_parse(const char *name);
const char *hub_channel_kind_name(enum hub_channel_kind kind);

#endif
