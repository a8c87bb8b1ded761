/* daemon/net/conns.h - the client connections of this process, counted in total and per
 * client address (an IPv4 address, an IPv6 /64: one host's share of either), so that the
 * HTTP server can hold http.max_connections and http.max_per_address for the connections
 * it serves and for those it handed over to the websocket server, which counts them here
 * from its side until they close. Owned by hubd; outlives both servers.
 * Knows nothing about HTTP or websockets. */
#ifndef HUB_CONNS_H
#define HUB_CONNS_H

#include <stddef.h>

#include <sys/socket.h>

#include "lib/err.h"

struct hub_conns;

/* Whom a connection is counted for: IPv4 as ::ffff:a.b.c.d, IPv6 its first 64 bits. */
struct hub_conns_key {
	unsigned char b[16];
};

struct hub_conns *hub_conns_new(void);
/* NULL-safe; every connection added must have been removed. */
void hub_conns_free(struct hub_conns *cs);
/* The key of a peer address: 0, or -EAFNOSUPPORT for a family other than IPv4 and IPv6. */
int hub_conns_key_of(const struct sockaddr *sa, struct hub_conns_key *out) HUB_MUSTCHECK;
/* The key of a connected socket's peer: 0 or a negative errno. */
int hub_conns_key_of_fd(int fd, struct hub_conns_key *out) HUB_MUSTCHECK;
/* Counts one connection of key; each is removed exactly once when it closes. */
void hub_conns_add(struct hub_conns *cs, const struct hub_conns_key *key);
void hub_conns_remove(struct hub_conns *cs, const struct hub_conns_key *key);
size_t hub_conns_total(const struct hub_conns *cs);
/* The open connections of key. */
size_t hub_conns_of(const struct hub_conns *cs, const struct hub_conns_key *key);
/* For log lines: the key as an address (IPv4 a.b.c.d, IPv6 prefix::/64) in buf. */
const char *hub_conns_key_str(const struct hub_conns_key *key, char *buf, size_t len);

#endif
