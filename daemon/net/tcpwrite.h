/* daemon/net/tcpwrite.h - bytes to a libuv stream in order, without a copy when the
 * kernel takes them at once: what the HTTP server and the HTTP client write. Knows
 * nothing about what the bytes are. */
#ifndef HUB_TCPWRITE_H
#define HUB_TCPWRITE_H

#include <stddef.h>

#include <uv.h>

#include "lib/mem.h"

/* A queued write: the caller's owner and its copy of the bytes. cb gets it as
 * hub_tcpwrite_of(w) and frees it with free(). */
struct hub_tcpwrite {
	uv_write_t w;
	void *owner;
	char data[];
};

#define hub_tcpwrite_of(req) hub_container_of(req, struct hub_tcpwrite, w)

/* Writes len bytes of p to s after the *pending writes still queued: at once when none
 * are and the kernel takes everything, else the rest copied and queued with uv_write
 * (++*pending; cb runs once for it, on the loop). 0, or a negative libuv error (nothing of
 * this call was queued). */
int hub_tcpwrite(uv_stream_t *s, const char *p, size_t len, int *pending, void *owner,
		 uv_write_cb cb);

#endif
