/* lib/secret.h - secrets at rest: a value (an access token, an app secret, an API key) is
 * sealed with AES-256-GCM under the master key before it is stored, as the text
 *   hs1:<key id>:<base64url of the 12-byte nonce, the ciphertext and the 16-byte tag>
 * where the key id is the first 8 hex digits of SHA-256("bayge-hub-key" || key): a value
 * names the key it needs, so a keyring holding the current key and the previous one opens
 * every value while `hubctl rotate-key` re-seals them. The associated data is where the
 * value lives ("channels/acme-wa/app_secret"): a value copied to another row or column
 * does not open. OpenSSL EVP; no I/O besides the kernel's RNG. */
#ifndef HUB_SECRET_H
#define HUB_SECRET_H

#include <stdbool.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/mem.h"

#define HUB_SECRET_KEY_HEX 64 /* a master key: 32 random bytes as hex (openssl rand -hex 32) */
#define HUB_SECRET_ID_LEN 8

struct hub_keyring;

/* A keyring from the current key and an optional previous one (hex, or NULL). 0 and *out
 * (an empty keyring when both are NULL), or -EINVAL with err naming which key is not 64 hex
 * digits (never its value). */
int hub_keyring_new(const char *current, const char *previous, struct hub_keyring **out,
		    struct hub_err *err) HUB_MUSTCHECK;
void hub_keyring_free(struct hub_keyring *kr); /* NULL-safe */
/* The current key's id ("3f2a9c01"), or NULL when the keyring has none. */
const char *hub_keyring_id(const struct hub_keyring *kr);

/* Whether value is sealed (starts with "hs1:"). */
bool hub_secret_sealed(struct hub_str value);
/* Seals plain for where under the current key, appending the text to out. 0, or -ENOKEY
 * when kr (may be NULL) has no current key. */
int hub_secret_seal(const struct hub_keyring *kr, struct hub_str where, struct hub_str plain,
		    struct hub_buf *out) HUB_MUSTCHECK;
/* Opens a sealed value for where, appending the plain text to out. 0; -ENOKEY when kr (may
 * be NULL) holds no key of the value's id; -EBADMSG when it is not a sealed value or does
 * not open (another place, altered, truncated). */
int hub_secret_open(const struct hub_keyring *kr, struct hub_str where, struct hub_str value,
		    struct hub_buf *out) HUB_MUSTCHECK;

#endif
