/* lib/channel.c - see channel.h. */
#include "lib/channel.h"

#include <string.h>

#include "lib/utf8.h"

static const char *const kind_names[] = {
	[HUB_CHANNEL_WHATSAPP] = "whatsapp",
	[HUB_CHANNEL_TELEGRAM] = "telegram",
	[HUB_CHANNEL_INSTAGRAM] = "instagram",
	[HUB_CHANNEL_WEB] = "web",
};

enum hub_channel_kind hub_channel_kind_parse(const char *name)
{
	for (size_t i = 1; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
		if (strcmp(kind_names[i], name) == 0)
			return (enum hub_channel_kind)i;
	return 0;
}

const char *hub_channel_kind_name(enum hub_channel_kind kind)
{
	if (kind < HUB_CHANNEL_WHATSAPP || kind > HUB_CHANNEL_WEB)
		return "?";
	return kind_names[kind];
}

bool hub_channel_id_valid(const char *s, size_t n)
{
	if (n == 0 || n > HUB_CHANNEL_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

bool hub_channel_account_valid(const char *s, size_t n)
{
	if (n == 0 || n > HUB_CHANNEL_ACCOUNT_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f)
			return false;
	}
	return true;
}

bool hub_channel_secret_valid(const char *s, size_t n)
{
	if (n == 0 || n > HUB_CHANNEL_SECRET_MAX || !hub_utf8_valid(s, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
			return false;
	return true;
}

bool hub_channel_telegram_secret_valid(const char *s, size_t n)
{
	if (n == 0 || n > 256)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

void hub_channel_secret_hint(const char *s, size_t n, char out[5])
{
	out[0] = '\0';
	if (n >= 16) {
		memcpy(out, s + n - 4, 4);
		out[4] = '\0';
	}
}
