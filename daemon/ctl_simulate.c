/* daemon/ctl_simulate.c - see ctl_simulate.h. A plain blocking HTTP/1.1 client is enough
 * here; the text and the phone number are never printed. */
#include "daemon/ctl_simulate.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "adapters/adapter.h"
#include "config/config.h"
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

/* "http://HOST:PORT[/...]" → host and port. */
static int parse_url(const char *url, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *p, *colon, *slash;

	if (strncmp(url, "http://", 7) != 0)
		return -EINVAL;
	p = url + 7;
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	colon = memchr(p, ':', (size_t)(slash - p));
	if (!colon || colon == p || (size_t)(colon - p) >= hostlen ||
	    (size_t)(slash - colon - 1) >= portlen || slash == colon + 1)
		return -EINVAL;
	memcpy(host, p, (size_t)(colon - p));
	host[colon - p] = '\0';
	memcpy(port, colon + 1, (size_t)(slash - colon - 1));
	port[slash - colon - 1] = '\0';
	return 0;
}

/* POSTs request to host:port and appends the whole response to resp. */
static int http_exchange(const char *host, const char *port, struct hub_str request,
			 struct hub_buf *resp)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int fd = -1, ret;

	ret = getaddrinfo(host, port, &hints, &ai);
	if (ret != 0) {
		fprintf(stderr, "hubctl: simulate: %s: %s\n", host, gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		ret = -errno;
		goto out;
	}
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

int hubctl_simulate_main(const struct hub_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "name", required_argument, NULL, 'n' },
		{ "url", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	struct hub_buf body = HUB_BUF_INIT, req = HUB_BUF_INIT, resp = HUB_BUF_INIT;
	struct hub_buf url = HUB_BUF_INIT, wamid = HUB_BUF_INIT;
	struct hub_pool pool = HUB_POOL_INIT;
	const char *from = NULL, *name = NULL, *url_arg = NULL;
	const struct hub_channel *ch;
	unsigned char mac[HUB_SHA256_LEN], rnd[16];
	struct hub_str phone;
	char host[256], port[16];
	int opt, ret = 1;

	optind = 0; /* glibc: 0 re-initializes, so GNU permutation applies again */
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'f': from = optarg; break;
		case 'n': name = optarg; break;
		case 'u': url_arg = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind != 3 || !from || !name) {
		fprintf(stderr, "usage: hubctl simulate whatsapp CHANNEL --from PHONE --name NAME "
				"[--url URL] TEXT\n");
		return 2;
	}
	if (strcmp(argv[optind], "whatsapp") != 0) {
		fprintf(stderr, "hubctl: simulate: platform \"%s\" is not supported\n",
			argv[optind]);
		return 2;
	}
	ch = hub_config_channel(cfg, hub_str_from(argv[optind + 1]));
	if (!ch || ch->kind != HUB_CHANNEL_WHATSAPP) {
		fprintf(stderr, "hubctl: simulate: no whatsapp channel \"%s\" in %s\n",
			argv[optind + 1], hub_config_path(cfg));
		return 2;
	}
	if (hub_phone_normalize(&pool, hub_str_from(from), &phone) < 0) {
		fprintf(stderr, "hubctl: simulate: --from is not a phone number\n");
		ret = 2;
		goto out;
	}
	if (hub_random_bytes(rnd, sizeof(rnd)) < 0)
		goto out;
	hub_buf_adds(&wamid, "wamid.HUB");
	hub_base64url_add(&wamid, rnd, sizeof(rnd));
	/* wa_id is the number without "+" */
	whatsapp_body(&body, ch, hub_pool_strndup(&pool, phone.p + 1, phone.len - 1), name,
		      argv[optind + 2], wamid.p);
	hub_hmac_sha256(hub_str_from(ch->app_secret), hub_buf_str(&body), mac);

	if (url_arg)
		hub_buf_adds(&url, url_arg);
	else
		hub_buf_addf(&url, "http://%s", hub_config_settings(cfg)->http.listen);
	if (parse_url(url.p, host, sizeof(host), port, sizeof(port)) < 0) {
		fprintf(stderr, "hubctl: simulate: --url must be http://HOST:PORT\n");
		ret = 2;
		goto out;
	}
	hub_buf_addf(&req, "POST /webhooks/whatsapp/%s HTTP/1.1\r\nHost: %s:%s\r\n"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
		     "X-Hub-Signature-256: sha256=", ch->id, host, port, body.len);
	hub_buf_addhex(&req, mac, sizeof(mac));
	hub_buf_adds(&req, "\r\nConnection: close\r\n\r\n");
	hub_buf_addstr(&req, hub_buf_str(&body));
	ret = http_exchange(host, port, hub_buf_str(&req), &resp);
	if (ret < 0) {
		fprintf(stderr, "hubctl: simulate: %s: %s\n", url.p, strerror(-ret));
		ret = 1;
		goto out;
	}
	/* "HTTP/1.1 200 OK\r\n...\r\n\r\nbody" */
	const char *sp = strchr(resp.p, ' ');
	const char *payload = strstr(resp.p, "\r\n\r\n");
	int status = sp ? atoi(sp + 1) : 0;
	printf("%s %d %s\n", wamid.p, status, payload ? payload + 4 : "");
	ret = status >= 200 && status < 300 ? 0 : 1;
out:
	hub_pool_release(&pool);
	hub_buf_release(&body);
	hub_buf_release(&req);
	hub_buf_release(&resp);
	hub_buf_release(&url);
	hub_buf_release(&wamid);
	return ret;
}
