/* lib/crypto.h - the few primitives hub needs from libcrypto: HMAC-SHA256, constant-time
 * comparison, hex and base64url, random bytes. No I/O besides the kernel's RNG. */
#ifndef HUB_CRYPTO_H
#define HUB_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

#define HUB_SHA256_LEN 32

void hub_hmac_sha256(struct hub_str key, struct hub_str data, unsigned char out[HUB_SHA256_LEN]);
/* Constant time in n; true when equal. */
bool hub_ct_equal(const void *a, const void *b, size_t n);
/* given == expected, in time that depends on neither content nor length (both are
 * compared as SHA-256 digests): for tokens and secrets sent by clients. */
bool hub_secret_equal(struct hub_str given, const char *expected);
/* Decodes exactly outlen bytes of upper- or lower-case hex. 0 or -EBADMSG. */
int hub_hex_decode(struct hub_str hex, unsigned char *out, size_t outlen) HUB_MUSTCHECK;
/* RFC 4648 section 5, without padding. */
void hub_base64url_add(struct hub_buf *b, const void *p, size_t n);
/* Appends the decoded bytes; rejects padding, whitespace and bad characters: -EBADMSG. */
int hub_base64url_decode(struct hub_buf *b, struct hub_str s) HUB_MUSTCHECK;
/* n random bytes from the kernel; 0 or a negative errno. */
int hub_random_bytes(void *p, size_t n) HUB_MUSTCHECK;

#endif
