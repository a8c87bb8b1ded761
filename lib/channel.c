/* lib/channel.c - see channel.h. */
#include "lib/channel.h"

#include <string.h>

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
