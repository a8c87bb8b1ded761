/* daemon/ctl/ctl_simulate.c - see ctl_simulate.h. Bodies follow tests/fixtures/<platform>/
 * text.json and /work/shared/PLATFORMS.md; a plain blocking HTTP/1.1 client is enough here.
 * The text, the sender and the secrets are never printed. */
#include "daemon/ctl/ctl_simulate.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "adapters/adapter.h"
#include "config/config.h"
#include "daemon/ctl/ctl_channel.h"
#include "lib/crypto.h"
#include "lib/json.h"

/* WhatsApp Cloud API: one text message from one contact, as in Meta's reference. */
static void whatsapp_body(struct hub_buf *b, const struct hub_channel *ch, const char *wa_id,
			  const char *name, const char *text, const char *wamid)
{
	struct hub_jw jw;
	char ts[24];

	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	hub_jw_init(&jw, b);
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "object");
	hub_jw_cstr(&jw, "whatsapp_business_account");
	hub_jw_key(&jw, "entry");
	hub_jw_arr_open(&jw);
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "id");
	hub_jw_cstr(&jw, "102290129340398");
	hub_jw_key(&jw, "changes");
	hub_jw_arr_open(&jw);
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "value");
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "messaging_product");
	hub_jw_cstr(&jw, "whatsapp");
	hub_jw_key(&jw, "metadata");
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "display_phone_number");
	hub_jw_cstr(&jw, "15550783881");
	hub_jw_key(&jw, "phone_number_id");
	hub_jw_cstr(&jw, ch->account_id);
	hub_jw_obj_close(&jw);
	hub_jw_key(&jw, "contacts");
	hub_jw_arr_open(&jw);
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "profile");
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "name");
	hub_jw_cstr(&jw, name);
	hub_jw_obj_close(&jw);
	hub_jw_key(&jw, "wa_id");
	hub_jw_cstr(&jw, wa_id);
	hub_jw_obj_close(&jw);
	hub_jw_arr_close(&jw);
	hub_jw_key(&jw, "messages");
	hub_jw_arr_open(&jw);
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "from");
	hub_jw_cstr(&jw, wa_id);
	hub_jw_key(&jw, "id");
	hub_jw_cstr(&jw, wamid);
	hub_jw_key(&jw, "timestamp");
	hub_jw_cstr(&jw, ts);
	hub_jw_key(&jw, "type");
	hub_jw_cstr(&jw, "text");
	hub_jw_key(&jw, "text");
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "body");
	hub_jw_cstr(&jw, text);
	hub_jw_obj_close(&jw);
	hub_jw_obj_close(&jw);
	hub_jw_arr_close(&jw);
	hub_jw_obj_close(&jw);
	hub_jw_key(&jw, "field");
	hub_jw_cstr(&jw, "messages");
	hub_jw_obj_close(&jw);
	hub_jw_arr_close(&jw);
	hub_jw_obj_close(&jw);
	hub_jw_arr_close(&jw);
	hub_jw_obj_close(&jw);
}

/* Telegram Bot API: one Update with a private text message (the sender's chat). */
static void telegram_body(struct hub_buf *b, long long from, const char *name, const char *text,
			  long long update_id, long long message_id)
{
	const char *space = strchr(name, ' ');
	struct hub_str first = space ? (struct hub_str){ name, (size_t)(space - name) }
				     : hub_str_from(name);
	const char *last = space ? space + 1 : NULL;
	struct hub_jw jw;

	hub_jw_init(&jw, b);
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "update_id");
	hub_jw_int(&jw, update_id);
	hub_jw_key(&jw, "message");
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "message_id");
	hub_jw_int(&jw, message_id);
	hub_jw_key(&jw, "from");
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "id");
	hub_jw_int(&jw, from);
	hub_jw_key(&jw, "is_bot");
	hub_jw_bool(&jw, false);
	hub_jw_key(&jw, "first_name");
	hub_jw_str(&jw, first);
	if (last && *last) {
		hub_jw_key(&jw, "last_name");
		hub_jw_cstr(&jw, last);
	}
	hub_jw_obj_close(&jw);
	hub_jw_key(&jw, "chat");
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "id");
	hub_jw_int(&jw, from);
	hub_jw_key(&jw, "first_name");
	hub_jw_str(&jw, first);
	if (last && *last) {
		hub_jw_key(&jw, "last_name");
		hub_jw_cstr(&jw, last);
	}
	hub_jw_key(&jw, "type");
	hub_jw_cstr(&jw, "private");
	hub_jw_obj_close(&jw);
	hub_jw_key(&jw, "date");
	hub_jw_int(&jw, (int64_t)time(NULL));
	hub_jw_key(&jw, "text");
	hub_jw_cstr(&jw, text);
	hub_jw_obj_close(&jw);
	hub_jw_obj_close(&jw);
}

/* Instagram messaging webhook: entry.id and recipient.id are the account, sender.id the
 * IGSID (strings: they exceed 2^53), times in milliseconds. No name: the platform sends
 * none (the User Profile API has it). */
static void instagram_body(struct hub_buf *b, const struct hub_channel *ch, const char *igsid,
			   const char *text, const char *mid)
{
	struct timespec now;
	int64_t ms;
	struct hub_jw jw;

	clock_gettime(CLOCK_REALTIME, &now);
	ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	hub_jw_init(&jw, b);
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "object");
	hub_jw_cstr(&jw, "instagram");
	hub_jw_key(&jw, "entry");
	hub_jw_arr_open(&jw);
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "time");
	hub_jw_int(&jw, ms);
	hub_jw_key(&jw, "id");
	hub_jw_cstr(&jw, ch->account_id);
	hub_jw_key(&jw, "messaging");
	hub_jw_arr_open(&jw);
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "sender");
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "id");
	hub_jw_cstr(&jw, igsid);
	hub_jw_obj_close(&jw);
	hub_jw_key(&jw, "recipient");
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "id");
	hub_jw_cstr(&jw, ch->account_id);
	hub_jw_obj_close(&jw);
	hub_jw_key(&jw, "timestamp");
	hub_jw_int(&jw, ms);
	hub_jw_key(&jw, "message");
	hub_jw_obj_open(&jw);
	hub_jw_key(&jw, "mid");
	hub_jw_cstr(&jw, mid);
	hub_jw_key(&jw, "text");
	hub_jw_cstr(&jw, text);
	hub_jw_obj_close(&jw);
	hub_jw_obj_close(&jw);
	hub_jw_arr_close(&jw);
	hub_jw_obj_close(&jw);
	hub_jw_arr_close(&jw);
	hub_jw_obj_close(&jw);
}

/* A string of 1..maxlen ASCII digits. */
static bool all_digits(const char *s, size_t maxlen)
{
	size_t n = strlen(s);

	if (n == 0 || n > maxlen)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* A random positive 31-bit number (Telegram update and message ids). */
static int random_id(long long *out)
{
	uint32_t v;

	if (hub_random_bytes(&v, sizeof(v)) < 0)
		return -EIO;
	*out = (long long)(v & 0x7fffffff) | 1;
	return 0;
}

static void sim_usage(void)
{
	fprintf(stderr,
		"usage: hubctl simulate PLATFORM CHANNEL --from ID [--name NAME] [--url URL] TEXT\n"
		"  whatsapp   --from PHONE --name NAME\n"
		"  telegram   --from USER_ID --name NAME\n"
		"  instagram  --from IGSID (its webhooks carry no name: --name is not sent)\n"
		"  --url      http://HOST:PORT of a hubd on this machine (127.0.0.0/8, ::1,\n"
		"             localhost: the request carries the channel's secret in clear);\n"
		"             default: http.listen\n");
}

/* "http://HOST:PORT[/...]" → host and port; HOST may be "[v6]" (host is then without the
 * brackets). -EPROTONOSUPPORT for https, -EINVAL for anything else. */
static int parse_url(const char *url, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *p, *hs, *he, *colon, *slash;

	if (strncasecmp(url, "https://", 8) == 0)
		return -EPROTONOSUPPORT;
	if (strncasecmp(url, "http://", 7) != 0)
		return -EINVAL;
	p = url + 7;
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	if (*p == '[') {
		hs = p + 1;
		he = memchr(hs, ']', (size_t)(slash - hs));
		if (!he)
			return -EINVAL;
		colon = he + 1;
		if (colon >= slash || *colon != ':')
			return -EINVAL;
	} else {
		hs = p;
		colon = memchr(p, ':', (size_t)(slash - p));
		he = colon;
	}
	if (!colon || he == hs || (size_t)(he - hs) >= hostlen ||
	    (size_t)(slash - colon - 1) >= portlen || slash == colon + 1)
		return -EINVAL;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	memcpy(port, colon + 1, (size_t)(slash - colon - 1));
	port[slash - colon - 1] = '\0';
	return 0;
}

/* An address on this machine's loopback: 127.0.0.0/8, ::1 (or ::ffff:127.x.y.z). */
static bool sockaddr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* What --url may name: localhost or a loopback address literal. The request carries the
 * channel's secret (Telegram's secret token verbatim, Meta's signature of the body) in
 * clear, so it never goes to another machine. */
static bool host_is_loopback(const char *host)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4.sin_addr) == 1)
		return sockaddr_is_loopback((struct sockaddr *)&a4);
	if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1)
		return sockaddr_is_loopback((struct sockaddr *)&a6);
	return false;
}

/* POSTs request to host:port and appends the whole response to resp. Only loopback
 * addresses are tried, whatever the name resolves to. */
static int http_exchange(const char *host, const char *port, struct hub_str request,
			 struct hub_buf *resp)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL, *a;
	int fd = -1, ret;

	ret = getaddrinfo(host, port, &hints, &ai);
	if (ret != 0) {
		fprintf(stderr, "hubctl: simulate: %s: %s\n", host, gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	ret = -EHOSTUNREACH;
	for (a = ai; a; a = a->ai_next) {
		if (!sockaddr_is_loopback(a->ai_addr))
			continue;
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		ret = -errno;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	if (fd < 0)
		goto out;
	for (size_t off = 0; off < request.len;) {
		ssize_t n = write(fd, request.p + off, request.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = -errno;
			goto out;
		}
		off += (size_t)n;
	}
	for (;;) {
		hub_buf_grow(resp, 4096);
		ssize_t n = read(fd, resp->p + resp->len, resp->cap - resp->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		resp->len += (size_t)n;
		resp->p[resp->len] = '\0';
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return ret;
}

/* The URL to post to: --url, else hubd's http.listen (a wildcard address is this
 * machine's loopback). 0, or 2 (the exit code) after saying what is wrong: not
 * http://HOST:PORT, https, or a host other than loopback. Nothing has been sent then. */
static int target_url(struct hub_config *cfg, const char *url_arg, struct hub_buf *url,
		      char *host, size_t hostlen, char *port, size_t portlen)
{
	int ret;

	if (url_arg)
		hub_buf_adds(url, url_arg);
	else
		hub_buf_addf(url, "http://%s", hub_config_settings(cfg)->http.listen);
	ret = parse_url(url->p, host, hostlen, port, portlen);
	if (ret == -EPROTONOSUPPORT) {
		fprintf(stderr, "hubctl: simulate: https is not supported: simulate posts plain "
				"HTTP to a hubd on this machine (--url http://127.0.0.1:PORT)\n");
		return 2;
	}
	if (ret < 0) {
		fprintf(stderr, "hubctl: simulate: --url must be http://HOST:PORT\n");
		return 2;
	}
	if (!url_arg && (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0))
		snprintf(host, hostlen, "%s", strcmp(host, "::") == 0 ? "::1" : "127.0.0.1");
	if (!host_is_loopback(host)) {
		fprintf(stderr, "hubctl: simulate: %s is not this machine's loopback: the "
				"request would carry the channel's secret in clear, so only "
				"127.0.0.0/8, ::1 and localhost are allowed%s\n", url->p,
			url_arg ? "" : " (http.listen; pass --url http://127.0.0.1:PORT)");
		return 2;
	}
	return 0;
}

int hubctl_simulate_main(struct hub_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "name", required_argument, NULL, 'n' },
		{ "url", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	struct hub_buf body = HUB_BUF_INIT, req = HUB_BUF_INIT, resp = HUB_BUF_INIT;
	struct hub_buf url = HUB_BUF_INIT, msgid = HUB_BUF_INIT;
	struct hub_pool pool = HUB_POOL_INIT;
	struct hub_config *snap = NULL;
	struct hub_err err = HUB_ERR_INIT;
	const char *from = NULL, *name = NULL, *url_arg = NULL, *platform, *cid, *text;
	const struct hub_channel *ch;
	enum hub_channel_kind kind;
	unsigned char mac[HUB_SHA256_LEN], rnd[16];
	char host[256], port[16];
	int opt, ret = 1;

	optind = 0; /* glibc: 0 re-initializes, so GNU permutation applies again */
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'f': from = optarg; break;
		case 'n': name = optarg; break;
		case 'u': url_arg = optarg; break;
		default:
			sim_usage();
			return 2;
		}
	}
	if (argc - optind != 3 || !from) {
		sim_usage();
		return 2;
	}
	platform = argv[optind];
	cid = argv[optind + 1];
	text = argv[optind + 2];
	kind = hub_channel_kind_parse(platform);
	if (!kind || kind == HUB_CHANNEL_WEB) {
		fprintf(stderr, "hubctl: simulate: platform \"%s\" is not supported (whatsapp, "
				"telegram, instagram)\n", platform);
		return 2;
	}
	if (!name && kind != HUB_CHANNEL_INSTAGRAM) {
		sim_usage();
		return 2;
	}
	/* before the channel is even looked up: its secret never goes elsewhere */
	if (target_url(cfg, url_arg, &url, host, sizeof(host), port, sizeof(port))) {
		ret = 2;
		goto out;
	}
	ch = hub_config_channel(cfg, hub_str_from(cid));
	if (!ch) {
		/* not in the file: a channel provisioned in the database (hubctl channel add) */
		if (hubctl_channel_snapshot(cfg, &snap, &err) < 0) {
			fprintf(stderr, "hubctl: simulate: no channel \"%s\" in %s, and the "
					"database cannot tell: %s\n", cid, hub_config_path(cfg),
				err.msg);
			ret = 1;
			goto out;
		}
		ch = hub_config_channel(snap, hub_str_from(cid));
	}
	if (!ch || ch->kind != kind) {
		fprintf(stderr, "hubctl: simulate: no %s channel \"%s\" in %s or the database\n",
			platform, cid, hub_config_path(cfg));
		ret = 2;
		goto out;
	}
	switch (kind) {
	case HUB_CHANNEL_WHATSAPP: {
		struct hub_str phone;

		if (hub_phone_normalize(&pool, hub_str_from(from), &phone) < 0) {
			fprintf(stderr, "hubctl: simulate: --from is not a phone number\n");
			ret = 2;
			goto out;
		}
		if (hub_random_bytes(rnd, sizeof(rnd)) < 0)
			goto out;
		hub_buf_adds(&msgid, "wamid.HUB");
		hub_base64url_add(&msgid, rnd, sizeof(rnd));
		/* wa_id is the number without "+" */
		whatsapp_body(&body, ch, hub_pool_strndup(&pool, phone.p + 1, phone.len - 1), name,
			      text, msgid.p);
		break;
	}
	case HUB_CHANNEL_TELEGRAM: {
		long long user, update_id, message_id;

		if (!all_digits(from, 18) || from[0] == '0') {
			fprintf(stderr, "hubctl: simulate: --from must be a Telegram user id "
					"(digits)\n");
			ret = 2;
			goto out;
		}
		user = strtoll(from, NULL, 10);
		if (random_id(&update_id) < 0 || random_id(&message_id) < 0)
			goto out;
		/* the adapter's external id: "<chat.id>:<message_id>" */
		hub_buf_addf(&msgid, "%lld:%lld", user, message_id);
		telegram_body(&body, user, name, text, update_id, message_id);
		break;
	}
	case HUB_CHANNEL_INSTAGRAM:
		if (!all_digits(from, 32)) {
			fprintf(stderr, "hubctl: simulate: --from must be an Instagram-scoped id "
					"(digits)\n");
			ret = 2;
			goto out;
		}
		if (hub_random_bytes(rnd, sizeof(rnd)) < 0)
			goto out;
		hub_buf_adds(&msgid, "aWdfZAG1faXRlbToxOkhVQ");
		hub_base64url_add(&msgid, rnd, sizeof(rnd));
		instagram_body(&body, ch, from, text, msgid.p);
		break;
	case HUB_CHANNEL_WEB: /* refused above: visitors write through /ws/visitor */
		goto out;
	}

	hub_buf_addf(&req, "POST /webhooks/%s/%s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n",
		     hub_channel_kind_name(kind), ch->id, strchr(host, ':') ? "[" : "", host,
		     strchr(host, ':') ? "]" : "", port, body.len);
	if (kind == HUB_CHANNEL_TELEGRAM) {
		/* Telegram: the secret_token given to setWebhook, verbatim */
		hub_buf_addf(&req, "X-Telegram-Bot-Api-Secret-Token: %s\r\n", ch->app_secret);
	} else {
		/* Meta: X-Hub-Signature-256: sha256=<hex HMAC of the raw body> */
		hub_hmac_sha256(hub_str_from(ch->app_secret), hub_buf_str(&body), mac);
		hub_buf_adds(&req, "X-Hub-Signature-256: sha256=");
		hub_buf_addhex(&req, mac, sizeof(mac));
		hub_buf_adds(&req, "\r\n");
	}
	hub_buf_adds(&req, "Connection: close\r\n\r\n");
	hub_buf_addstr(&req, hub_buf_str(&body));
	ret = http_exchange(host, port, hub_buf_str(&req), &resp);
	if (ret < 0) {
		fprintf(stderr, "hubctl: simulate: %s: %s\n", url.p, strerror(-ret));
		ret = 1;
		goto out;
	}
	/* "HTTP/1.1 200 OK\r\n...\r\n\r\nbody" */
	const char *sp = resp.p ? strchr(resp.p, ' ') : NULL;
	const char *payload = resp.p ? strstr(resp.p, "\r\n\r\n") : NULL;
	int status = sp ? atoi(sp + 1) : 0;
	printf("%s %d %s\n", msgid.p, status, payload ? payload + 4 : "");
	ret = status >= 200 && status < 300 ? 0 : 1;
out:
	hub_config_unref(snap);
	hub_pool_release(&pool);
	hub_buf_release(&body);
	hub_buf_release(&req);
	hub_buf_release(&resp);
	hub_buf_release(&url);
	hub_buf_release(&msgid);
	return ret;
}
