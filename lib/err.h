/* lib/err.h - the one error space: 0 or a negative errno, plus a message for humans.
 * -EBADMSG malformed input, -EPERM bad signature or token, -ENOENT unknown thing,
 * -EMSGSIZE over a limit, -ETIMEDOUT, -ECANCELED at shutdown, -EINVAL bad config value. */
#ifndef HUB_ERR_H
#define HUB_ERR_H

#include "lib/mem.h"

struct hub_err {
	int code;      /* 0 or a negative errno */
	char msg[512]; /* NUL-terminated; empty when code is 0 */
};

#define HUB_ERR_INIT { 0, { 0 } }

/* Fills err (if not NULL) and returns code, so a failure is one line:
 * return hub_err_set(err, -EBADMSG, "body: %s", why); */
int hub_err_set(struct hub_err *err, int code, const char *fmt, ...) HUB_PRINTF(3, 4);
void hub_err_clear(struct hub_err *err);

#endif
