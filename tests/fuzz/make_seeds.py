#!/usr/bin/python3
"""tests/fuzz/make_seeds.py - writes the seed corpora of the fuzz targets of mk/fuzz.mk into
tests/fuzz/<target>/corpus/ from tests/fixtures/, config/ and the cases the unit and
integration tests use (tests/unit/test_send.c's answers, tests/integration/test_abuse.py's
requests), in each target's input format (the comment at the top of
tests/fuzz/fuzz_<target>.c). Seeds are named seed-*; other files in corpus/ (inputs merged
from fuzzing runs) are left alone. Run from anywhere; rerun after changing a fixture.

Usage: tests/fuzz/make_seeds.py [TARGET ...]
"""
import base64
import glob
import hashlib
import hmac
import json
import os
import sys

FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(FUZZ))


def fixtures(platform):
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", platform, "*.json"))):
        with open(path, "rb") as f:
            out.append((os.path.basename(path)[:-5], f.read()))
    return out


def write(target, seeds):
    d = os.path.join(FUZZ, target, "corpus")
    os.makedirs(d, exist_ok=True)
    for old in glob.glob(os.path.join(d, "seed-*")):
        os.unlink(old)
    for name, data in seeds:
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)
    print("%-12s %3d seeds" % (target, len(seeds)))


# ---- json ----

def json_seeds():
    seeds = []
    for platform in ("whatsapp", "telegram", "instagram"):
        seeds += [("%s-%s" % (platform, n), b) for n, b in fixtures(platform)]
    for name in ("dev", "hubd.example"):
        with open(os.path.join(ROOT, "config", name + ".json"), "rb") as f:
            seeds.append(("config-" + name, f.read()))
    cases = {
        "empty-object": b"{}",
        "empty-array": b" [ ] ",
        "literals": b'[true,false,null,0,-0,1.5e10,-2E-3,123456789012345678901234567890]',
        "bare-number": b"  -12.5e+3  ",
        "bare-string": b'"a\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/"',
        "lone-surrogate": b'{"a":"\\ud800x","b":"\\udc00"}',
        "nul-escape": b'{"k\\u0000":"v\\u0000"}',
        "utf8": '{"ключ":"значение","emoji":"😀","cjk":"中文"}'.encode(),
        "deep": b"[" * 60 + b"]" * 60,
        "too-deep": b"[" * 70 + b"]" * 70,
        "dup-keys": b'{"a":1,"a":2,"b":{"a":[1,{"a":null}]}}',
        "escaped-key": b'{"\\u0061":1,"a":2}',
        "trailing": b'{"a":1} x',
        "unterminated": b'{"a":"b',
        "bad-escape": b'{"a":"\\x"}',
        "control": b'{"a":"\x01"}',
        "bad-utf8": b'{"a":"\xc3\x28"}',
        "overlong": b'{"a":"\xc0\xaf"}',
        "leading-zero": b"[01]",
        "big-exp": b"[1e999,-1e999]",
        "int64": b"[9223372036854775807,-9223372036854775808,9223372036854775808]",
        "whitespace": b' \t\r\n{ "a" : [ 1 , 2 ] }\n',
    }
    seeds += sorted(cases.items())
    return seeds


# ---- jwt ----

SECRET = b"fuzz-jwt-secret-0123456789abcdef"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def token(header, claims, secret=SECRET):
    h = b64(header if isinstance(header, bytes) else json.dumps(header).encode())
    p = b64(claims if isinstance(claims, bytes) else json.dumps(claims).encode())
    sig = b64(hmac.new(secret, h + b"." + p, hashlib.sha256).digest())
    return h + b"." + p + b"." + sig


def jwt_seeds():
    hs = {"alg": "HS256", "typ": "JWT"}
    ok = {"sub": "agent-7", "tid": "demo", "role": "agent", "exp": 4102444800}
    now = 1 << 1          # clock 1: 1700000000
    raw, signed = 0, 1
    seeds = []

    def add(name, mode, data):
        seeds.append((name, bytes([mode | now]) + data))

    add("valid", raw, token(hs, ok))
    add("admin", raw, token(hs, dict(ok, role="admin")))
    add("expired", raw, token(hs, dict(ok, exp=1600000000)))
    add("exp-overflow", raw, token(hs, dict(ok, exp=18446744073709552)))
    add("exp-huge", raw, token(hs, dict(ok, exp=9223372036854775807)))
    add("wrong-secret", raw, token(hs, ok, b"another-secret-0123456789abcdef"))
    add("alg-none", raw, b64(b'{"alg":"none","typ":"JWT"}') + b"." + b64(json.dumps(ok).encode())
        + b".")
    add("alg-hs512", raw, token({"alg": "HS512", "typ": "JWT"}, ok))
    add("no-typ", raw, token({"alg": "HS256"}, ok))
    add("two-segments", raw, token(hs, ok).rsplit(b".", 1)[0])
    add("four-segments", raw, token(hs, ok) + b".x")
    add("padding", raw, token(hs, ok) + b"=")
    add("empty", raw, b"")
    add("dots", raw, b"..")
    for name, header, claims in [
            ("s-valid", hs, ok),
            ("s-typ-lower", {"alg": "HS256", "typ": "jwt"}, ok),
            ("s-crit", {"alg": "HS256", "crit": ["exp"]}, ok),
            ("s-dup-alg", b'{"alg":"HS256","alg":"none"}', ok),
            ("s-escaped-alg", b'{"\\u0061lg":"HS256"}', ok),
            ("s-alg-number", {"alg": 256}, ok),
            ("s-sub-127", hs, dict(ok, sub="a" * 127)),
            ("s-sub-128", hs, dict(ok, sub="a" * 128)),
            ("s-sub-control", hs, dict(ok, sub="a\nb")),
            ("s-sub-nul", hs, b'{"sub":"a\\u0000b","tid":"demo","role":"agent","exp":4102444800}'),
            ("s-sub-escaped", hs, b'{"sub":"\\u0430\\u0433\\u0435\\u043d\\u0442","tid":"demo",'
             b'"role":"agent","exp":4102444800}'),
            ("s-role-unknown", hs, dict(ok, role="root")),
            ("s-role-long", hs, dict(ok, role="agent" * 10)),
            ("s-exp-string", hs, dict(ok, exp="4102444800")),
            ("s-exp-float", hs, b'{"sub":"a","tid":"b","role":"agent","exp":4102444800.5}'),
            ("s-exp-big", hs, b'{"sub":"a","tid":"b","role":"agent","exp":1e20}'),
            ("s-exp-max", hs, dict(ok, exp=253402300799)),
            ("s-exp-over-max", hs, dict(ok, exp=253402300800)),
            ("s-dup-claim", hs, b'{"sub":"a","sub":"b","tid":"b","role":"agent","exp":4102444800}'),
            ("s-missing-tid", hs, {"sub": "a", "role": "agent", "exp": 4102444800}),
            ("s-array", hs, b"[1,2]"),
            ("s-not-json", hs, b"not json"),
    ]:
        h = header if isinstance(header, bytes) else json.dumps(header).encode()
        c = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
        add(name, signed, h + b"\n" + c)
    return seeds


# ---- router ----

def router_seeds():
    paths = [
        (0, "/healthz"), (1, "/healthz/"), (2, "/healthz"), (0, "/webhooks/whatsapp/demo-whatsapp"),
        (2, "/webhooks/telegram/demo%2Dtelegram"), (0, "/webhooks/%2e%2e/x"),
        (0, "/webhooks/a%00b/c"), (0, "/webhooks/a/.."), (0, "/webhooks/a/%2E"),
        (0, "/api/v1/conversations/12/messages"), (4, "/api/v1/conversations/12"),
        (0, "/api/v1/conversations//messages"), (0, "/inbox/app.js"), (0, "/inbox/"),
        (0, "//"), (0, "/"), (0, ""), (0, "healthz"), (0, "/a/../b"), (0, "/%"), (0, "/%zz"),
        (0, "/%4"), (0, "/ws?x=1"), (0, "/ws#f"), (0, "/ws x"), (0, "/\x7f"),
        (0, "/a" * 33), (0, "/a" * 32), (0, "/" + "x" * 2050), (3, "/healthz"),
        (5, "/webhooks/a/b"), (6, "/healthz"), (7, "/healthz"), (1, "/inbox/a+b%20c"),
    ]
    seeds = []
    for i, (m, p) in enumerate(paths):
        for cap in (15, 0):   # the full Allow buffer, and the smallest
            seeds.append(("%02d-%d" % (i, cap), bytes([m | cap << 3]) + p.encode("latin-1")))
    patterns = [
        ("/x/{a}/{b}", "/x/1/2"), ("/x/{a}b", "/x/1b"), ("/{a}{b}", "/1"), ("/{}", "/1"),
        ("/x//y", "/x/y"), ("x", "/x"), ("/" + "/{p}" * 9, "/1" * 9), ("/{a}/", "/1/"),
        ("/healthz", "/healthz"), ("/webhooks/{platform}/{channel}", "/webhooks/a/b"),
        ("/{x", "/{x"), ("/a}", "/a}"),
    ]
    for i, (pat, p) in enumerate(patterns):
        seeds.append(("pattern-%02d" % i, bytes([0x80 | 15 << 3]) + (pat + "\n" + p).encode()))
    return seeds


# ---- adapters ----

def adapter_seeds(platform):
    """Bodies, some after a "#name=value&..." line of headers and query (event_check.h)."""
    fx = fixtures(platform)
    seeds = fx + [("empty", b""), ("not-json", b"<html>"), ("array", b"[]"), ("object", b"{}")]
    body = fx[0][1]
    if platform == "telegram":
        seeds += [("secret-token", b"#X-Telegram-Bot-Api-Secret-Token=fuzz-secret_Token-1\n"
                   + body),
                  ("wrong-token", b"#X-Telegram-Bot-Api-Secret-Token=fuzz-secret_Token-2\n"
                   + body)]
    else:
        sig = hmac.new(b"fuzz-app-secret", body, hashlib.sha256).hexdigest().encode()
        seeds += [("signed", b"#X-Hub-Signature-256=sha256=" + sig + b"\n" + body),
                  ("signed-upper", b"#x-hub-signature-256=sha256=" + sig.upper() + b"\n" + body),
                  ("signed-wrong", b"#X-Hub-Signature-256=sha256=" + b"0" * 64 + b"\n" + body),
                  ("handshake", b"#hub.mode=subscribe&hub.verify_token=fuzz-verify-token"
                   b"&hub.challenge=1158201444\n{}"),
                  ("handshake-wrong", b"#hub.mode=subscribe&hub.verify_token=fuzz-verify"
                   b"&hub.challenge=1\n{}")]
    return seeds


def tg_updates_seeds():
    updates = [b for _, b in fixtures("telegram")]
    seeds = [("all", b"\x02" + b'{"ok":true,"result":[' + b",".join(updates) + b"]}"),
             ("empty", b"\x00" + b'{"ok":true,"result":[]}'),
             ("not-ok", b"\x00" + b'{"ok":false,"error_code":409,"description":"Conflict: '
              b'terminated by other getUpdates request"}'),
             ("no-result", b"\x00" + b'{"ok":true}'),
             ("bad-update", b"\x01" + b'{"ok":true,"result":[{"update_id":-5},{"x":1},7,'
              b'{"update_id":"12"},{"update_id":725000002,"message":{}}]}'),
             ("max-offset", b"\x05" + b'{"ok":true,"result":[{"update_id":9223372036854775806},'
              b'{"update_id":9223372036854775807}]}')]
    for name, b in fixtures("telegram"):
        seeds.append(("one-" + name, b"\x00" + b'{"ok":true,"result":[' + b + b"]}"))
    return seeds


def send_result_seeds():
    """tests/unit/test_send.c's answers: adapter, status, Retry-After, body."""
    src = open(os.path.join(ROOT, "tests", "unit", "test_send.c"), encoding="utf-8").read()
    seeds = []
    adapters = {"whatsapp": 0, "telegram": 1, "instagram": 2}
    for name, idx in adapters.items():
        start = src.find("static void test_%s_answers" % name)
        if start < 0:
            continue
        body = src[start:src.find("check_answers", start)]
        n = 0
        for entry in body.split("\n\t\t{ ")[1:]:
            # { status, retry_after, "body" ...: C literals, concatenated
            try:
                status = int(entry.split(",", 1)[0])
            except ValueError:
                continue
            rest = entry.split(",", 1)[1].strip()
            if rest.startswith("NULL"):
                ra = None
                rest = rest[4:]
            else:
                end = rest.index('",')
                ra = rest[1:end].encode()
                rest = rest[end + 2:]
            lits = []
            i = 0
            while True:
                q = rest.find('"', i)
                if q < 0:
                    break
                j = q + 1
                s = ""
                while rest[j] != '"':
                    if rest[j] == "\\":
                        s += {'"': '"', "\\": "\\", "n": "\n"}.get(rest[j + 1], rest[j + 1])
                        j += 2
                    else:
                        s += rest[j]
                        j += 1
                lits.append(s)
                k = j + 1
                while k < len(rest) and rest[k] in " \t\n":
                    k += 1
                i = k
                if k >= len(rest) or rest[k] != '"':
                    break
            text = "".join(lits).encode()
            head = bytes([idx, status >> 8, status & 255])
            head += b"\xff" if ra is None else bytes([len(ra)]) + ra
            seeds.append(("%s-%02d" % (name, n), head + text))
            n += 1
    seeds.append(("telegram-long", bytes([1, 1, 144, 255]) +
                  ('{"ok":false,"error_code":400,"description":"' + "ы" * 400 + '"}').encode()))
    return seeds


# ---- http ----

def req(method, path, headers=(), body=b"", host=True, version="HTTP/1.1"):
    out = ("%s %s %s\r\n" % (method, path, version)).encode()
    if host:
        out += b"Host: 127.0.0.1\r\n"
    for k, v in headers:
        out += k + b": " + v + b"\r\n"
    if body and not any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in headers):
        out += b"Content-Length: %d\r\n" % len(body)
    return out + b"\r\n" + body


def chunked(method, path, trailers, body=b""):
    out = req(method, path, [(b"Transfer-Encoding", b"chunked")])
    if body:
        out += b"%x\r\n%s\r\n" % (len(body), body)
    return out + b"0\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in trailers) + b"\r\n"


WS = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
      (b"Sec-WebSocket-Version", b"13"), (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ==")]


def http_seeds():
    wa = dict(fixtures("whatsapp"))["text"]
    hook = "/webhooks/whatsapp/demo-whatsapp"
    trailers = [(b"X-T%d" % i, b"v" * 300) for i in range(15)]
    cases = {
        "get": req("GET", "/healthz"),
        "head": req("HEAD", "/healthz"),
        "http10": req("GET", "/healthz", host=False, version="HTTP/1.0"),
        "http10-keepalive": req("GET", "/healthz", [(b"Connection", b"keep-alive")], host=False,
                                version="HTTP/1.0") + req("GET", "/healthz", host=False,
                                                          version="HTTP/1.0"),
        "no-host": req("GET", "/healthz", host=False),
        "two-hosts": req("GET", "/healthz", [(b"Host", b"b")]),
        "webhook": req("POST", hook, [(b"Content-Type", b"application/json"),
                                      (b"X-Hub-Signature-256", b"sha256=00")], wa),
        "handshake": req("GET", hook + "?hub.mode=subscribe&hub.challenge=1158201444"
                         "&hub.verify_token=t"),
        "handshake-crlf": req("GET", hook + "?hub.challenge=1%0d%0aSet-Cookie:%20x"),
        "handshake-nul": req("GET", hook + "?hub.challenge=%00"),
        "handshake-plus": req("GET", hook + "?hub.challenge=a+b&&=&hub.challenge=2"),
        "pipeline": req("GET", "/healthz") + req("POST", hook, body=b"{}") + req("HEAD", "/healthz")
        + req("GET", "/nope"),
        "pipeline-later": req("POST", "/later/1", body=b"abc") + req("GET", "/later/2")
        + req("GET", "/healthz") + req("GET", "/later/3"),
        "trailers-405": chunked("POST", "/healthz", trailers),
        "trailers-handshake": chunked("GET", hook + "?hub.challenge=1158201444", trailers),
        "trailers-after-body": chunked("POST", hook, [(b"X-After", b"1")], b"x" * 5000),
        "trailers-many": chunked("POST", hook, [(b"X-T%d" % i, b"v" * 300) for i in range(40)]),
        "chunks": req("POST", hook, [(b"Transfer-Encoding", b"chunked")])
        + b"3\r\nabc\r\n1;ext=1\r\nd\r\n0\r\n\r\n",
        "chunk-huge": req("POST", hook, [(b"Transfer-Encoding", b"chunked")])
        + b"ffffffffffffffff\r\nabc",
        "cl-te": req("POST", hook, [(b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")])
        + b"0\r\n\r\n",
        "cl-dup": req("POST", hook, [(b"Content-Length", b"3"), (b"Content-Length", b"4")]) + b"abcd",
        "cl-huge": req("POST", hook, [(b"Content-Length", b"67108864")]) + b"abc",
        "cl-over": req("POST", hook, body=b"x" * 2000),
        "bare-lf": b"GET /healthz HTTP/1.1\nHost: a\n\n",
        "obs-fold": b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
        "headers-65": req("GET", "/healthz", [(b"X-H%d" % i, b"v") for i in range(65)]),
        "headers-big": req("GET", "/healthz", [(b"X-Big", b"v" * 9000)]),
        "absolute-form": req("GET", "http://127.0.0.1/healthz"),
        "connect": req("CONNECT", "127.0.0.1:443"),
        "options-star": req("OPTIONS", "*"),
        "path-nul": req("GET", "/webhooks/a%00/b"),
        "path-dotdot": req("GET", "/webhooks/%2e%2e/b"),
        "path-long": req("GET", "/" + "a" * 3000),
        "h2c": req("GET", "/healthz", [(b"Upgrade", b"h2c"), (b"Connection", b"Upgrade, HTTP2-Settings"),
                                       (b"HTTP2-Settings", b"AAMAAABkAARAAAAAAAIAAAAA")]),
        "h2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "expect": req("POST", hook, [(b"Expect", b"100-continue")], b"{}"),
        "nul-header": b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",
        "ws": req("GET", "/ws", WS),
        "ws-pipelined": req("GET", "/ws", WS) + b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
        "ws-no-key": req("GET", "/ws", WS[:3]),
        "ws-version": req("GET", "/ws", WS[:2] + [(b"Sec-WebSocket-Version", b"8"), WS[3]]),
        "ws-after-pipeline": req("GET", "/healthz") + req("GET", "/ws", WS),
        "ws-post": req("POST", "/ws", WS, b"x"),
        "method-405": req("DELETE", "/healthz"),
        "not-http": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "crlf-first": b"\r\n\r\n" + req("GET", "/healthz"),
        "api-204": req("GET", "/api/v1/conversations/12/messages") + req("HEAD", "/api/v1/conversations/1/messages"),
    }
    seeds = []
    for name, stream in sorted(cases.items()):
        seeds.append((name, bytes([0x0a, 0]) + stream))
    # the same split in small pieces, with small limits, and a client that leaves
    for name in ("pipeline", "trailers-405", "chunks", "webhook", "ws", "pipeline-later"):
        seeds.append((name + "-pieces", bytes([0x0a, 7]) + cases[name]))
    for name in ("headers-big", "cl-over", "trailers-many", "get"):
        seeds.append((name + "-small", bytes([0x01, 0]) + cases[name]))
    for name in ("pipeline-later", "webhook", "ws"):
        seeds.append((name + "-rude", bytes([0x1a, 0]) + cases[name]))
    return seeds


# ---- inbox ----

def inbox_seeds():
    ROWS, AGAIN, DOWN, FAIL, CANCEL = 3 << 3, 0, 1 << 3, 2 << 3, 4 << 3
    agent, admin, tmax = 0, 1, 2 << 1
    ack = b"ack\t\\N\t\\N\t"
    cmds = {
        "send": ({"type": "send", "ref": "r1", "conversation_id": 12, "text": "Hello",
                  "client_id": "c-1"},
                 b"event\t41\tmessage.created\t{\"id\":41}\n" + ack + b"{\"message_id\":41}"),
        "send-reply": ({"type": "send", "ref": 7, "conversation_id": 12, "text": "Да",
                        "reply_to": 40}, ack + b"{\"message_id\":42, \"status\":\"queued\"}"),
        "send-blank": ({"type": "send", "conversation_id": 12, "text": " \u3000\n"}, b""),
        "send-long": ({"type": "send", "conversation_id": 12, "text": "x" * 5000}, b""),
        "send-nul": ({"type": "send", "conversation_id": 12, "text": "a\u0000b"}, b""),
        "send-bad-client": ({"type": "send", "conversation_id": 12, "text": "a",
                             "client_id": ""}, b""),
        "read": ({"type": "read", "ref": "r", "conversation_id": 3},
                 b"event\t9\tconversation.updated\t{}\n" + ack + b"{}"),
        "assign-null": ({"type": "assign", "conversation_id": 3, "assignee": None}, ack + b"{}"),
        "assign-other": ({"type": "assign", "conversation_id": 3, "assignee": "agent-9"},
                         b"error\t\\N\tforbidden\tonly admins assign others\n"),
        "mode": ({"type": "mode", "conversation_id": 3, "mode": "ai"}, ack + b"{\"mode\":\"ai\"}"),
        "mode-bad": ({"type": "mode", "conversation_id": 3, "mode": "robot"}, b""),
        "typing": ({"type": "typing", "conversation_id": 3}, ack + b"{}"),
        "retry": ({"type": "retry", "conversation_id": 3, "message_id": 8},
                  b"error\t\\N\tnot_found\tno such message"),
        "retry-bad": ({"type": "retry", "conversation_id": 3, "message_id": -8}, b""),
        "unknown": ({"type": "dance", "ref": "x"}, b""),
        "no-type": ({"ref": {"a": 1}}, b""),
        "conv-string": ({"type": "read", "conversation_id": "3"}, b""),
        "conv-huge": ({"type": "read", "conversation_id": 99999999999999999999}, b""),
        "ref-long": ({"type": "read", "ref": "r" * 300, "conversation_id": 3}, b""),
        "ref-object": ({"type": "read", "ref": [1], "conversation_id": 3}, b""),
        "ack-empty": ({"type": "read", "conversation_id": 3}, b"event\t0\tx\t{}\n"),
        "ack-no-brace": ({"type": "read", "conversation_id": 3}, ack + b"x"),
    }
    seeds = []
    for name, (cmd, rows) in sorted(cmds.items()):
        frame = json.dumps(cmd, ensure_ascii=False).encode()
        seeds.append((name, frame + b"\x00" + bytes([ROWS | tmax | agent]) + rows))
    frame = json.dumps(cmds["send"][0]).encode()
    for name, ctl in (("again", AGAIN), ("down", DOWN), ("fail", FAIL), ("cancel", CANCEL),
                      ("admin", ROWS | admin | tmax), ("text-max-1", ROWS | 0)):
        seeds.append(("send-" + name, frame + b"\x00" + bytes([ctl]) + cmds["send"][1]))
    seeds.append(("frame-only", frame))
    return seeds


# ---- bus ----

def bus_seeds():
    """Records for fuzz_bus.c: an op byte and a payload's JSON, signed by the target."""
    def notice(tenant, i, sync=False, instance="0123456789abcdef"):
        d = {"instance": instance, "tenant": tenant, "ts": 1700000000000, "id": i}
        if sync:
            d["sync"] = True
        return json.dumps(d).encode()

    typing = json.dumps({"instance": "x", "tenant": "t2", "ts": 1700000000000, "event": "typing",
                         "data": {"conversation_id": 3, "user": "agent-7"}}).encode()
    stale = typing.replace(b"1700000000000", b"1600000000000")
    key = b"fuzz-bus-hmac-key-0123456789"
    ch = b"hub:ev:fuzz"
    body = notice("fuzz", 7)
    mac = hmac.new(key, b"hub:bus:v1\0" + ch + b"\0" + body, hashlib.sha256).hexdigest()
    presigned = b"v1." + mac.encode() + b"." + body   # a payload as an instance sends it
    cases = {
        "notice": [b"\x00" + notice("fuzz", 6), b"\x00" + notice("fuzz", 7),
                   b"\x01" + notice("t2", 1)],
        "duplicate": [b"\x00" + notice("fuzz", 5), b"\x00" + notice("fuzz", 6),
                      b"\x00" + notice("fuzz", 6)],
        "burst": [b"\x00" + notice("fuzz", i) for i in range(6, 12)],
        "gap": [b"\x00" + notice("fuzz", 900)],
        "sync": [b"\x00" + notice("fuzz", 12, sync=True)],
        "typing": [b"\x01" + typing, b"\x08"],
        "typing-stale": [b"\x01" + stale],
        "typing-bad": [b"\x01" + typing.replace(b": 3", b": -3")],
        "nobody": [b"\x02" + notice("nobody", 41)],
        "old-key": [b"\x03" + notice("fuzz", 6)],
        "unsigned": [b"\x04" + notice("fuzz", 6), b"\x04v1.00." + notice("fuzz", 6),
                     b"\x04" + presigned, b"\x04" + presigned.replace(b"v1.", b"v2.")],
        "other-channel": [b"\x05" + notice("t2", 3)],
        "resync": [b"\x06", b"\x00" + notice("fuzz", 6)],
        "publish": [b"\x07", b"\x07", b"\x00" + notice("fuzz", 8)],
        "read-fails": [b"\x09", b"\x00" + notice("fuzz", 20), b"\x06"],
        "channel": [b"\x0afuzz|" + notice("fuzz", 6), b"\x0at2|" + notice("fuzz", 1),
                    b"\x0a|" + notice("", 1)],
        "malformed": [b"\x00not json", b"\x00[]", b"\x00{\"instance\":1,\"tenant\":\"fuzz\"}",
                      b"\x00" + notice("fuzz", 0), b"\x00" + notice("fuzz", "7")],
        "big-id": [b"\x00" + notice("fuzz", 9223372036854775807)],
    }
    return [(name, b"\x00".join(recs)) for name, recs in sorted(cases.items())]


# ---- config ----

def config_seeds():
    seeds = []
    for name in ("dev", "hubd.example"):
        with open(os.path.join(ROOT, "config", name + ".json"), "rb") as f:
            seeds.append((name, f.read()))
    base = {"database": {"url": "postgresql://hub@127.0.0.1/hub"},
            "auth": {"jwt_secret": "0123456789abcdef0123"}}
    chans = {"tenants": [{"id": "demo", "name": "Demo"}],
             "channels": [{"id": "wa", "tenant": "demo", "kind": "whatsapp", "account_id": "1",
                           "app_secret": "s", "verify_token": "v", "access_token": "a"},
                          {"id": "tg", "tenant": "demo", "kind": "telegram", "account_id": "2",
                           "app_secret": "s2", "access_token": "7:AA", "mode": "polling"}]}
    cases = {
        "minimal": base,
        "channels": dict(base, **chans),
        "flat-keys": {"database.url": "postgresql://x", "auth.jwt_secret": "0123456789abcdef"},
        "secret-file": {"database": {"url": "postgresql://x"},
                        "auth": {"jwt_secret_file": "tests/fuzz/config/jwt_secret"}},
        "secret-twice": {"database": {"url": "postgresql://x"},
                         "auth": {"jwt_secret": "0123456789abcdef",
                                  "jwt_secret_file": "tests/fuzz/config/jwt_secret"}},
        "secret-missing-file": {"database": {"url": "postgresql://x"},
                                "auth": {"jwt_secret_file": "tests/fuzz/config/none"}},
        "short-secret": {"database": {"url": "postgresql://x"}, "auth": {"jwt_secret": "short"}},
        "bounds": dict(base, http={"body_max": 1, "header_max": 99999999999999999999,
                                   "listen": "localhost:80"}),
        "types": dict(base, log={"level": 3}, ws="x", outbound={"enabled": "yes"}),
        "unknown": dict(base, nope=1, http={"nope": {}}),
        "dup-ids": dict(base, tenants=[{"id": "a", "name": "A"}, {"id": "a", "name": "B"}],
                        channels=[{"id": "c", "tenant": "zz", "kind": "fax"}]),
        "urls": dict(base, platforms={"whatsapp_url": "https://h:1/p/", "telegram_url": "ftp://x",
                                      "ca_file": None}),
        "nul": dict(base, platforms={"meta_api_version": "v\u0000"}),
        "newline-key": dict(base, **{"a\nb": 1}),
    }
    for name, c in sorted(cases.items()):
        seeds.append((name, json.dumps(c, indent=1).encode()))
    seeds += [("not-object", b"[]"), ("empty", b""), ("bad-json", b'{"http": {')]
    return seeds


# ---- dictionaries: JSON's tokens (json/json.dict) and the keys the parsers look for ----

def json_keys(blobs):
    keys, values = set(), set()

    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                keys.add(k)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and len(v) <= 24:
            values.add(v)

    for b in blobs:
        try:
            walk(json.loads(b))
        except ValueError:
            pass
    return keys, values


def write_dict(target, words, header):
    with open(os.path.join(FUZZ, "json", "json.dict"), encoding="utf-8") as f:
        base = [line for line in f.read().splitlines() if line and not line.startswith("#")]
    out = ["# %s (libFuzzer -dict), written by make_seeds.py: JSON's tokens and %s"
           % (target, header)] + base
    for w in sorted(words):
        enc = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else
                      "".join("\\x%02x" % b for b in c.encode()) for c in w)
        out.append('"%s"' % enc)
    with open(os.path.join(FUZZ, target, target + ".dict"), "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def dicts():
    for platform in ("whatsapp", "telegram", "instagram"):
        keys, values = json_keys([b for _, b in fixtures(platform)])
        words = {'"%s":' % k for k in keys} | {'"%s"' % v for v in values if v.isascii()}
        target = platform
        write_dict(target, words, "the keys and short values of tests/fixtures/%s/" % platform)
        if platform == "telegram":
            write_dict("tg_updates", words | {'"ok":true', '"result":[', '"description":'},
                       "the keys of tests/fixtures/telegram/ and getUpdates'")
    with open(os.path.join(ROOT, "config", "hubd.example.json"), "rb") as f:
        keys, _ = json_keys([f.read()])
    words = {'"%s":' % k for k in keys} | {'"%s_file":' % k for k in
                                           ("url", "jwt_secret", "app_secret", "verify_token",
                                            "access_token", "master_key",
                                            "previous_master_key", "token", "hmac_key")}
    words |= {'"whatsapp"', '"telegram"', '"instagram"', '"polling"', '"webhook"', '"debug"',
              '"127.0.0.1:8080"', '"[::1]:0"', '"https://h"', '"tests/fuzz/config/jwt_secret"'}
    write_dict("config", words, "config/hubd.example.json's keys")
    words = {'"%s":' % k for k in ("type", "ref", "conversation_id", "text", "client_id",
                                    "reply_to", "assignee", "mode", "message_id")}
    words |= {'"%s"' % v for v in ("send", "read", "assign", "mode", "typing", "retry", "ai",
                                    "human", "resume", "auth")}
    words |= {"\\N", "\t", "ack\t", "event\t", "error\t"}
    write_dict("inbox", words, "the commands' fields and hub_cmd()'s rows")
    words = {'"%s":' % k for k in ("instance", "tenant", "id", "event", "data", "sync",
                                    "conversation_id", "user", "sig", "kid")}
    words |= {'"typing"', '"message.created"', '"fuzz"', '"t2"', "fuzz|"}
    write_dict("bus", words, "the Redis payloads' fields")


TARGETS = {
    "json": json_seeds, "jwt": jwt_seeds, "router": router_seeds,
    "whatsapp": lambda: adapter_seeds("whatsapp"), "telegram": lambda: adapter_seeds("telegram"),
    "instagram": lambda: adapter_seeds("instagram"), "tg_updates": tg_updates_seeds,
    "send_result": send_result_seeds, "http": http_seeds, "inbox": inbox_seeds,
    "bus": bus_seeds, "config": config_seeds,
}


def main(argv):
    for target in argv or sorted(TARGETS):
        write(target, TARGETS[target]())
    dicts()


if __name__ == "__main__":
    main(sys.argv[1:])
