"""tests/support/tokens.py - HS256 JSON Web Tokens minted in Python, including the bad
ones (expired, forged, alg none, malformed) and a verifier for hubctl's output.
"""
import base64
import hashlib
import hmac
import json
import time


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def mint(secret, sub="agent-1", tid="demo", role="agent", ttl=3600, exp=None, alg="HS256",
         extra=None, iat=None):
    """A token with claims sub, tid, role, exp (now + ttl unless exp is given) and iat when
    given (Unix seconds; hubctl token always sets it). alg "none" yields an unsigned token
    with an empty signature."""
    header = {"alg": alg, "typ": "JWT"}
    claims = {"sub": sub, "tid": tid, "role": role,
              "exp": int(exp if exp is not None else time.time() + ttl)}
    if iat is not None:
        claims["iat"] = int(iat)
    claims.update(extra or {})
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    if alg == "none":
        return signing_input + "."
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


def verify(token, secret, now=None):
    """Returns the claims of a valid HS256 token; raises ValueError saying what is wrong."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not three dot-separated parts")
    header = json.loads(b64url_decode(parts[0]))
    if header.get("alg") != "HS256":
        raise ValueError("alg is %r" % header.get("alg"))
    mac = hmac.new(secret.encode(), (parts[0] + "." + parts[1]).encode(),
                   hashlib.sha256).digest()
    if not hmac.compare_digest(mac, b64url_decode(parts[2])):
        raise ValueError("bad signature")
    claims = json.loads(b64url_decode(parts[1]))
    if claims.get("exp", 0) <= (now or time.time()):
        raise ValueError("expired")
    return claims
