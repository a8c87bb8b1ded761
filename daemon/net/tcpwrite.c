/* daemon/net/tcpwrite.c - see tcpwrite.h. */
#include "daemon/net/tcpwrite.h"

#include <stdlib.h>
#include <string.h>

int hub_tcpwrite(uv_stream_t *s, const char *p, size_t len, int *pending, void *owner,
		 uv_write_cb cb)
{
	struct hub_tcpwrite *wr;
	uv_buf_t b;
	int n;

	if (!len)
		return 0;
	if (!*pending) {
		b = uv_buf_init((char *)p, (unsigned int)len);
		n = uv_try_write(s, &b, 1);
		if (n >= 0 && (size_t)n == len)
			return 0;
		if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS)
			return n;
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
	}
	wr = hub_xmalloc(sizeof(*wr) + len);
	memcpy(wr->data, p, len);
	wr->owner = owner;
	b = uv_buf_init(wr->data, (unsigned int)len);
	n = uv_write(&wr->w, s, &b, 1, cb);
	if (n < 0) {
		free(wr);
		return n;
	}
	++*pending;
	return 0;
}
