"""tests/support/fakeplat.py - fake WhatsApp Cloud API, Telegram Bot API and Instagram
Messaging servers for hubd's outbound side: their send APIs (and Telegram's getUpdates,
setWebhook, getFile; the platforms' media downloads) in the platforms' exact wire formats
(see /work/shared/PLATFORMS.md), over HTTPS with a certificate of a tests/support/testca
TestCA (hubd's client trusts its ca.pem), on 127.0.0.1 and a free port, in background
threads. HTTP/1.1 with keep-alive (many requests per connection, Content-Length on every
answer, or Transfer-Encoding: chunked on request). Python stdlib only.

Use from a test:

    from support import fakeplat, testca
    ca = testca.TestCA(folder)                   # ca.ca is the CA file to give hubd
    srv = fakeplat.FakePlatform("whatsapp", ca)  # or "telegram", "instagram"
    srv.start()                                  # also: with FakePlatform(...) as srv:
    self.addCleanup(srv.stop)
    srv.base_url                                 # "https://127.0.0.1:PORT"
    srv.expect_token("EAAG...")                  # optional: any other Bearer token (Meta)
                                                 # or bot token in the path (TG) -> 401
    srv.callback(h.base_url, channel)            # optional: status/echo webhooks to hubd
    ... hubd sends ...
    reqs = srv.wait_requests(1, timeout=5)       # the recorded requests (Request objects)
    srv.stop()

Request (srv.requests, in order of receipt; recorded whatever the answer):
    method, target (as sent), path (without query), query (dict, first values),
    headers (dict, lower-case names), body (bytes), json (parsed body or None),
    form (dict of form/multipart fields or None), files ({name: (filename, mime, bytes)}),
    t (time.monotonic() at receipt), conn (connection number: equal for requests on one
    keep-alive connection), op (what it was: "send" for the platforms' send endpoints -
    Telegram: the method name, e.g. "sendMessage" - "mark_read", "upload", "media_info",
    "media", "profile", "getUpdates", "setWebhook", "getMe", "getFile", "file",
    "unknown"), status (the answered HTTP status; None if stalled/reset), answer (the
    answered JSON or None), result_id (the new wamid / mid / message_id of a successful
    send), done (threading.Event set once answered or dropped).

FakePlatform(kind, ca, port=0, host="127.0.0.1", verbose=False)
    start() / stop()              start the server thread / stop it, closing every
                                  connection (stalled and idle ones too); idempotent
    base_url, port, kind
    requests, wait_requests(n, timeout=5, op=None) -> list (raises TimeoutError)
    clear()                       forget recorded requests, callbacks and queued failures
    expect_token(*tokens)         accepted tokens; none given: any (the default)
    chunked = True                answer everything with Transfer-Encoding: chunked
    chunk_size = 16               bytes per chunk in chunked answers
    fail_next(mode, count=1, on=None, **kw)
        Queues a behaviour for the next `count` requests whose op matches `on` (default
        "getUpdates" for "conflict", else "send": every send endpoint; "any" matches all;
        else an op name). Queued entries apply first-in first-out. Modes:
        "invalid"  400 WhatsApp/Instagram {"error":{"message","type":"OAuthException",
                   "code":100,"error_data":{"details"},"fbtrace_id"}}; Telegram 400
                   "Bad Request: chat not found"
        "token"    401 Meta code 190 subcode 463 "Error validating access token: Session
                   has expired ..."; Telegram 401 "Unauthorized"
        "window"   WhatsApp 400 code 131047 "Re-engagement message"; Instagram 400
                   code 10 error_subcode 2018278 (not Telegram)
        "blocked"  Telegram 403 "Forbidden: bot was blocked by the user" (Telegram only)
        "rate"     429: WhatsApp code 130429 (kw code=131056 for the pair limit),
                   Instagram code 4, both with a Retry-After header; Telegram
                   "Too Many Requests: retry after N" with parameters.retry_after
                   (kw retry_after, default 1)
        "500"      500 with the platform's error body
        "conflict" Telegram 409 "Conflict: terminated by other getUpdates request; ..."
        "stall"    read the request, never answer; close when the server stops or after
                   kw seconds (then without an answer)
        "reset"    read the request, then close the TCP connection with an RST
        "chunked"  answer normally, with Transfer-Encoding: chunked
        "delay"    answer normally after kw seconds (default 1)
        "custom"   kw status (int), body (dict/list/bytes/str), headers (dict)
        kw for the error modes: message, details, code, subcode, status override the
        platform's values; chunked=True sends that error chunked.
    callback(hub_url, channel, statuses=None, delay=0.05, first_delay=None, retries=4)
        After each successful send on this fake (WhatsApp, Instagram), POST to
        {hub_url}/webhooks/{kind}/{channel["id"]} the platform's webhooks, signed with
        X-Hub-Signature-256 by channel["app_secret"], over plain HTTP, one every `delay`
        seconds from first_delay (default delay) after the request: WhatsApp statuses
        (default ("sent", "delivered", "read"); also "failed", "played"); Instagram
        events (default ("echo", "read")). A 5xx, 429 or connection failure is retried
        up to `retries` times (backoff from 0.1 s); callbacks still due at stop() are
        dropped. The channel of a send: WhatsApp by phone_number_id (the channel's
        account_id); Instagram by access token, then account id; else the only one
        registered. Call again for more channels. Results: srv.callbacks (dicts url,
        path, body, json, status, attempts, error, t) and srv.callback_errors (the failed
        ones; never raised); wait_callbacks(n, timeout=5) -> list.
    Telegram long polling:
        push_update(update) -> update_id (assigned increasing if missing)
        max_poll_hold = 1.0          getUpdates holds at most min(timeout, this) seconds
        pending_updates() -> list    not yet acknowledged (offset not past them)
        polls_waiting                how many getUpdates are being held right now
        webhook                      the dict last given to setWebhook, or None; while
                                     set, getUpdates answers 409 as Telegram does. A
                                     second getUpdates terminates a held one with 409.
    Media:
        add_media(media_id, data, mime, file_path=None)
            WhatsApp GET /v{N}/{id} (Bearer) -> {"messaging_product","url","mime_type",
            "sha256","file_size","id"}; GET url (Bearer) -> the bytes. Telegram getFile
            {file_id} -> {"file_id","file_unique_id","file_size","file_path"}; GET
            /file/bot<token>/<file_path> -> the bytes. Instagram: GET media_url(id).
        media_url(media_id, token=None)    the download URL on this server
        srv.phone_numbers[pnid] = {"display_phone_number", "verified_name"}  WhatsApp GET
            /v{N}/{pnid}?fields=... answers them (else it is a media id)
        add_profile(igsid, fields)         Instagram GET /v{N}/{IGSID}?fields=... answer
    Per-platform ids: srv.account_id (Instagram's /me, default "17841471550633446"),
    srv.waba_id, srv.display_phone_number (WhatsApp webhooks), srv.bot (Telegram getMe).

Endpoints: WhatsApp POST /v{N}/{phone_number_id}/messages (text, media, reaction, ...
and {"status":"read"} mark-read -> {"success":true}), POST /v{N}/{id}/media (multipart
upload -> {"id"}), GET /v{N}/{media_id}, GET /media-bytes/{id}. Telegram POST|GET
/bot<token>/sendMessage|sendPhoto|sendDocument|sendChatAction|getUpdates|setWebhook|
deleteWebhook|getWebhookInfo|getMe|getFile (JSON, form or multipart parameters),
GET /file/bot<token>/<path>. Instagram POST /v{N}/me/messages (or /v{N}/<IG id>/messages;
message or sender_action), GET /v{N}/{IGSID}, GET /cdn/{id}. Anything else: 404 in the
platform's error shape. Bodies are validated as the platform does (WhatsApp
messaging_product/to/type, text.body <= 4096 characters; Telegram chat_id, text <= 4096
UTF-16 units, caption <= 1024; Instagram recipient.id, message.text <= 1000 bytes): 400
with the platform's error.

Command line (for `make run`): starts all three and runs until SIGTERM/SIGINT:

    python3 tests/support/fakeplat.py --dir DIR [--hub http://127.0.0.1:8080]
        [--config CONFIG.json] [--whatsapp-port N] [--telegram-port N]
        [--instagram-port N] [--delay S] [--verbose]

It makes (or reuses, when under a day old) a TestCA in DIR, writes DIR/fakeplat.json =
{"whatsapp": base_url, "telegram": ..., "instagram": ..., "ca": DIR/ca.pem, "pid": PID}
once listening (removed at exit), and calls back to the hub (--hub, else the config's
http.listen) for the WhatsApp and Instagram channels of the hub's JSON config (app_secret
or app_secret_file). Tokens are not checked. Development helpers (not recorded): POST
/_fake/update {Update} on the Telegram fake queues an update for getUpdates; GET
/_fake/requests on any fake lists what it received. Quiet unless --verbose.
"""
import base64
import email.parser
import email.policy
import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import mimetypes
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse

if __package__:
    from . import fakehttp, testca
else:  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from support import fakehttp, testca  # noqa: E402

KINDS = ("whatsapp", "telegram", "instagram")
_FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "fixtures")

TG_CONFLICT_POLL = ("Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running")
TG_CONFLICT_WEBHOOK = ("Conflict: can't use getUpdates method while webhook is active; use "
                       "deleteWebhook to delete the webhook first")
WA_TYPES = ("audio", "contacts", "document", "image", "interactive", "location", "reaction",
            "sticker", "template", "text", "video")
WA_MEDIA = ("audio", "document", "image", "sticker", "video")
IG_ATTACHMENTS = ("image", "audio", "video", "file", "like_heart", "MEDIA_SHARE")
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_META_PREFIX_RE = re.compile(r"^/v\d+(?:\.\d+)?/")

_MODES = {
    "whatsapp": {"invalid", "token", "window", "rate", "500"},
    "instagram": {"invalid", "token", "window", "rate", "500"},
    "telegram": {"invalid", "token", "blocked", "rate", "500", "conflict"},
}
_GENERIC_MODES = {"stall", "reset", "chunked", "delay", "custom"}


def _dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _fixture_json(rel):
    with open(os.path.join(_FIXTURES, rel), "rb") as f:
        return json.loads(f.read())


def sign(body, app_secret):
    """The X-Hub-Signature-256 value of body (as tests/support/whatsapp.sign)."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def _fbtrace():
    return "A" + base64.urlsafe_b64encode(os.urandom(8)).decode().rstrip("=")[:10]


class Request:
    """One request the fake received (see the module docstring)."""

    def __init__(self, method, target, headers, body, t, conn):
        self.method = method
        self.target = target
        sp = urllib.parse.urlsplit(target)
        self.path = sp.path
        self.query = {k: v[0] for k, v in urllib.parse.parse_qs(
            sp.query, keep_blank_values=True).items()}
        self.headers = headers
        self.body = body
        self.t = t
        self.conn = conn
        self.json = None
        self.form = None
        self.files = {}
        self.op = "unknown"
        self.status = None
        self.answer = None
        self.result_id = None
        self.done = threading.Event()
        ctype = headers.get("content-type", "").lower()
        if body:
            if ctype.startswith("multipart/form-data"):
                try:
                    self.form, self.files = _multipart(body, headers.get("content-type"))
                except Exception:  # a malformed upload: the route answers 400
                    self.form, self.files = {}, {}
            elif ctype.startswith("application/x-www-form-urlencoded"):
                self.form = {k: v[0] for k, v in urllib.parse.parse_qs(
                    body.decode("utf-8", "replace"), keep_blank_values=True).items()}
            else:
                try:
                    self.json = json.loads(body)
                except ValueError:
                    self.json = None

    def params(self):
        """Telegram-style parameters: query, then form fields or the JSON object."""
        p = dict(self.query)
        if isinstance(self.json, dict):
            p.update(self.json)
        if self.form:
            p.update(self.form)
        return p

    def __repr__(self):
        return "<Request %s %s op=%s status=%s %r>" % (self.method, self.path, self.op,
                                                        self.status, self.body[:120])


def _multipart(body, ctype):
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + body)
    fields, files = {}, {}
    if not msg.is_multipart():
        return fields, files
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name is None:
            continue
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = (filename, part.get_content_type(), data)
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files


class _Answer:
    def __init__(self, status, body, headers=None, ctype=None, chunked=False):
        self.status = status
        self.obj = body if isinstance(body, (dict, list)) else None
        if isinstance(body, (dict, list)):
            body = _dumps(body)
        elif isinstance(body, str):
            body = body.encode("utf-8")
        self.body = body or b""
        self.headers = list((headers or {}).items())
        self.ctype = ctype
        self.chunked = chunked


class _Handler(fakehttp.Handler):
    server_version = "fakeplat"

    def _write(self, ans, req):
        fake = self.server.fake
        chunked = ans.chunked or fake.chunked
        req.status = ans.status
        req.answer = ans.obj
        self.send_response(ans.status)
        self.send_header("Content-Type", ans.ctype or fake._ctype)
        for k, v in ans.headers:
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(ans.body)))
        if not chunked:  # the head and the body in one write
            self._headers_buffer.append(b"\r\n")
            self._headers_buffer.append(ans.body)
            self.flush_headers()
        else:
            self.end_headers()
        if chunked:
            size = max(1, int(fake.chunk_size))
            for i in range(0, len(ans.body), size):
                piece = ans.body[i:i + size]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")


class FakePlatform:
    """A fake of one platform's API (see the module docstring)."""

    Request = Request
    Answer = _Answer
    socket_timeout = 10

    def __init__(self, kind, ca, port=0, host="127.0.0.1", verbose=False,
                 cert_name="fakeplat"):
        if kind not in KINDS:
            raise ValueError("kind must be one of %s" % ", ".join(KINDS))
        self.kind = kind
        self.log_name = "fakeplat " + kind
        self.ca = ca
        self.host = host
        self.port = port
        self.verbose = verbose
        self._ssl = ca.ssl_context(cert_name)
        self._ctype = ("application/json" if kind == "telegram"
                       else "application/json; charset=UTF-8")
        self._cond = threading.Condition()
        self._stop_event = threading.Event()
        self._tl = threading.local()
        self._conn_seq = itertools.count(1)
        self._conns = set()
        self._server = None
        self._thread = None
        self._stopped = False
        self.requests = []
        self.tls_errors = []
        self.chunked = False
        self.chunk_size = 16
        self._failures = []
        self._tokens = set()
        self._ids = itertools.count(1)
        # callbacks
        self._channels = []
        self.callbacks = []
        self.callback_errors = []
        self._cb_heap = []
        self._cb_seq = itertools.count()
        self._cb_thread = None
        # media
        self._media = {}
        self._profiles = {}
        # WhatsApp phone number ids GET /v{N}/{id} answers for (the admin API's check)
        self.phone_numbers = {}
        # per platform
        self.account_id = "17841471550633446"
        self.waba_id = "102290129340398"
        self.display_phone_number = "15550783881"
        self.bot = {"id": 7012345678, "is_bot": True, "first_name": "Bayge Test Bot",
                    "username": "bayge_test_bot", "can_join_groups": True,
                    "can_read_all_group_messages": False, "supports_inline_queries": False}
        self._chat_msg_ids = {}
        self._updates = []
        self._next_update_id = 510000001
        self._poll_gen = 0
        self.polls_waiting = 0
        self.max_poll_hold = 1.0
        self.webhook = None

    # --- lifecycle ---
    def start(self):
        if self._server:
            return self
        self._server = fakehttp.Server((self.host, self.port), _Handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="fakeplat-" + self.kind, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops serving, wakes held polls and stalls, closes every connection."""
        if not self._server or self._stopped:
            return
        self._stopped = True
        self._stop_event.set()
        with self._cond:
            self._cond.notify_all()
            conns = list(self._conns)
        self._server.shutdown()
        self._server.server_close()
        for c in conns:
            try:
                socket.socket.shutdown(c, socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        if self._cb_thread:
            self._cb_thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self):
        return "https://%s:%d" % (self.host, self.port)

    # --- configuration ---
    def expect_token(self, *tokens):
        with self._cond:
            self._tokens = set(tokens)

    def fail_next(self, mode, count=1, on=None, **kw):
        mode = str(mode)
        if mode not in _MODES[self.kind] and mode not in _GENERIC_MODES:
            raise ValueError("mode %r does not apply to %s (use one of %s)"
                             % (mode, self.kind,
                                ", ".join(sorted(_MODES[self.kind] | _GENERIC_MODES))))
        if on is None:
            on = "getUpdates" if mode == "conflict" else "send"
        with self._cond:
            self._failures.append([mode, int(count), on, kw])

    def clear(self):
        with self._cond:
            self.requests = []
            self.callbacks = []
            self.callback_errors = []
            self._failures = []

    def add_media(self, media_id, data, mime, file_path=None):
        media_id = str(media_id)
        n = next(self._ids)
        if file_path is None:
            major = mime.split("/")[0]
            folder = {"image": "photos", "video": "videos", "audio": "music"}.get(major,
                                                                                "documents")
            if mime in ("audio/ogg", "audio/opus"):
                folder = "voice"
            ext = mimetypes.guess_extension(mime) or ".bin"
            if ext == ".jpe":
                ext = ".jpg"
            file_path = "%s/file_%d%s" % (folder, n, ext)
        with self._cond:
            self._media[media_id] = {
                "data": bytes(data), "mime": mime, "file_path": file_path,
                "sha256": hashlib.sha256(data).hexdigest(),
                "unique": "AgAD" + hashlib.sha256(media_id.encode()).hexdigest()[:12]}
        return media_id

    def media_url(self, media_id, token=None):
        m = self._media[str(media_id)]
        if self.kind == "whatsapp":
            return "%s/media-bytes/%s" % (self.base_url, urllib.parse.quote(str(media_id)))
        if self.kind == "instagram":
            return "%s/cdn/%s?oh=00_%s&oe=%X" % (self.base_url,
                                                urllib.parse.quote(str(media_id)),
                                                m["sha256"][:16], int(time.time()) + 86400)
        token = token or (sorted(self._tokens)[0] if self._tokens else "0:fake")
        return "%s/file/bot%s/%s" % (self.base_url, token, m["file_path"])

    def add_profile(self, igsid, fields):
        with self._cond:
            self._profiles[str(igsid)] = dict(fields)

    # --- recorded requests ---
    def wait_requests(self, n, timeout=5.0, op=None):
        """Waits until at least n requests (of op, if given) are recorded; returns them."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if op is None or _op_matches(op, r.op)]
                if len(got) >= n:
                    return got
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError("%s fake: %d of %d requests%s within %.1f s: %r"
                                       % (self.kind, len(got), n,
                                          " (op %s)" % op if op else "", timeout,
                                          self.requests[-5:]))
                self._cond.wait(left)

    def wait_callbacks(self, n, timeout=5.0):
        """Waits until at least n callbacks finished (delivered or failed); returns them."""
        end = time.monotonic() + timeout
        with self._cond:
            while len(self.callbacks) < n:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError("%s fake: %d of %d callbacks within %.1f s; errors: %r"
                                       % (self.kind, len(self.callbacks), n, timeout,
                                          self.callback_errors))
                self._cond.wait(left)
            return list(self.callbacks)

    # --- Telegram updates ---
    def push_update(self, update):
        u = dict(update)
        with self._cond:
            if "update_id" not in u:
                u["update_id"] = self._next_update_id
            self._next_update_id = max(self._next_update_id, int(u["update_id"]) + 1)
            self._updates.append(u)
            self._updates.sort(key=lambda x: x["update_id"])
            self._cond.notify_all()
        return u["update_id"]

    def pending_updates(self):
        with self._cond:
            return list(self._updates)

    # --- callbacks ---
    def callback(self, hub_url, channel, statuses=None, delay=0.05, first_delay=None,
                 retries=4):
        if self.kind == "telegram":
            raise ValueError("Telegram has no delivery statuses: no callbacks")
        allowed = (("sent", "delivered", "read", "played", "failed")
                   if self.kind == "whatsapp" else ("echo", "read"))
        if statuses is None:
            statuses = allowed[:3] if self.kind == "whatsapp" else allowed
        for s in statuses:
            if s not in allowed:
                raise ValueError("%s callbacks are %s, not %r" % (self.kind, allowed, s))
        entry = {"hub_url": hub_url.rstrip("/"), "channel": dict(channel),
                 "statuses": tuple(statuses), "delay": delay,
                 "first_delay": delay if first_delay is None else first_delay,
                 "retries": retries}
        with self._cond:
            self._channels = [c for c in self._channels
                              if c["channel"].get("id") != channel.get("id")] + [entry]
            if self._cb_thread is None:
                self._cb_thread = threading.Thread(target=self._cb_loop, daemon=True,
                                                   name="fakeplat-cb-" + self.kind)
                self._cb_thread.start()

    def _find_channel(self, account=None, token=None):
        with self._cond:
            chans = list(self._channels)
        if token:
            for c in chans:
                if c["channel"].get("access_token") == token:
                    return c
        if account:
            for c in chans:
                if str(c["channel"].get("account_id")) == str(account):
                    return c
        return chans[0] if len(chans) == 1 else None

    def _schedule(self, t0, entry, jobs):
        """jobs: list of functions returning (path, body); posted in order."""
        with self._cond:
            for i, job in enumerate(jobs):
                due = t0 + entry["first_delay"] + i * entry["delay"]
                heapq.heappush(self._cb_heap, (due, next(self._cb_seq), entry, job))
            self._cond.notify_all()

    def _cb_loop(self):
        while True:
            with self._cond:
                while not self._stop_event.is_set():
                    now = time.monotonic()
                    if self._cb_heap and self._cb_heap[0][0] <= now:
                        break
                    self._cond.wait(self._cb_heap[0][0] - now if self._cb_heap else 1.0)
                if self._stop_event.is_set():
                    return
                _, _, entry, job = heapq.heappop(self._cb_heap)
            try:
                path, body = job()
                self._post(entry, path, body)
            except Exception as e:  # never raise in the thread
                with self._cond:
                    rec = {"url": entry["hub_url"], "path": None, "body": None, "json": None,
                           "status": None, "attempts": 0, "error": repr(e),
                           "t": time.monotonic()}
                    self.callbacks.append(rec)
                    self.callback_errors.append(rec)
                    self._cond.notify_all()

    def _post(self, entry, path, body):
        u = urllib.parse.urlsplit(entry["hub_url"])
        full = u.path.rstrip("/") + path
        rec = {"url": entry["hub_url"] + path, "path": path, "body": body,
               "json": json.loads(body), "status": None, "attempts": 0, "error": None,
               "t": time.monotonic()}
        headers = {"Content-Type": "application/json",
                   "X-Hub-Signature-256": sign(body, entry["channel"]["app_secret"]),
                   "User-Agent": "facebookexternalua"}
        backoff = 0.1
        for attempt in range(entry["retries"] + 1):
            rec["attempts"] += 1
            status, err = None, None
            conn = None
            try:
                cls = (http.client.HTTPSConnection if u.scheme == "https"
                       else http.client.HTTPConnection)
                conn = cls(u.hostname, u.port, timeout=10)
                conn.request("POST", full, body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException) as e:
                err = repr(e)
            finally:
                if conn:
                    conn.close()
            rec["status"] = status
            rec["error"] = err
            if status is not None and 200 <= status < 300:
                break
            if status is not None and status < 500 and status != 429:
                rec["error"] = "hub answered %d" % status
                break
            if attempt == entry["retries"] or self._stop_event.wait(backoff):
                rec["error"] = err or "hub answered %d" % status
                break
            backoff = min(1.0, backoff * 2)
        with self._cond:
            self.callbacks.append(rec)
            if rec["error"]:
                self.callback_errors.append(rec)
            self._cond.notify_all()
        if rec["error"] and self.verbose:
            sys.stderr.write("fakeplat %s: callback %s failed: %s\n"
                             % (self.kind, rec["url"], rec["error"]))

    # --- answering ---
    def _take_failure(self, op):
        with self._cond:
            for f in self._failures:
                if _op_matches(f[2], op):
                    f[1] -= 1
                    if f[1] <= 0:
                        self._failures.remove(f)
                    return f[0], f[3]
        return None

    def _answer(self, req):
        route = getattr(self, "_route_" + self.kind)(req)
        if route is None:  # a control request, not recorded
            return self._control(req)
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()
        fail = self._take_failure(req.op)
        chunked = False
        if fail:
            mode, kw = fail
            if mode == "stall":
                return fakehttp.Drop("stall", kw.get("seconds"))
            if mode == "reset":
                return fakehttp.Drop("reset")
            if mode == "chunked":
                chunked = True
            elif mode == "delay":
                self._stop_event.wait(kw.get("seconds", 1.0))
            elif mode == "custom":
                return _Answer(kw.get("status", 500), kw.get("body", b""), kw.get("headers"),
                               chunked=kw.get("chunked", False))
            else:
                ans = self._error(mode, kw)
                ans.chunked = kw.get("chunked", False)
                return ans
        ans = route(req)
        ans.chunked = ans.chunked or chunked
        return ans

    def _error(self, mode, kw):
        if self.kind == "telegram":
            return self._tg_error_mode(mode, kw)
        return self._meta_error_mode(mode, kw)

    # Meta (WhatsApp, Instagram)
    def _meta_err(self, status, message, code, subcode=None, details=None, transient=None,
                  etype="OAuthException", headers=None):
        err = {"message": message, "type": etype, "code": code}
        if details is not None:
            err["error_data"] = ({"messaging_product": "whatsapp", "details": details}
                                 if self.kind == "whatsapp" else {"details": details})
        if subcode is not None:
            err["error_subcode"] = subcode
        if transient is not None:
            err["is_transient"] = transient
        err["fbtrace_id"] = _fbtrace()
        h = {"x-fb-trace-id": err["fbtrace_id"], "x-fb-request-id": _fbtrace()}
        if code == 190:
            h["WWW-Authenticate"] = 'OAuth "Facebook Platform" "invalid_token" "%s"' % message
        h.update(headers or {})
        return _Answer(status, {"error": err}, h)

    def _meta_error_mode(self, mode, kw):
        wa = self.kind == "whatsapp"
        p = {}  # status, message, code, subcode, details, transient, headers
        if mode == "invalid":
            p = dict(status=400, message="(#100) Invalid parameter", code=100,
                     details=("Param to is not a valid WhatsApp phone number" if wa
                              else "No matching user found"),
                     subcode=None if wa else 2018001)
        elif mode == "token":
            now = time.time() - 8 * 3600
            p = dict(status=401, code=190, subcode=463, message=(
                "Error validating access token: Session has expired on %s PST. The current "
                "time is %s PST." % (time.strftime("%A, %d-%b-%y %H:%M:%S",
                                                   time.gmtime(now - 3600)),
                                     time.strftime("%A, %d-%b-%y %H:%M:%S",
                                                   time.gmtime(now)))))
        elif mode == "window":
            if wa:
                p = dict(status=400, code=131047, message="(#131047) Re-engagement message",
                         details="Message failed to send because more than 24 hours have "
                                 "passed since the customer last replied to this number.")
            else:
                p = dict(status=400, code=10, subcode=2018278,
                         message="(#10) This message is sent outside of allowed window.")
        elif mode == "rate":
            ra = kw.get("retry_after", 1)
            code = kw.get("code", 130429 if wa else 4)
            if code == 131056:
                p = dict(message="(#131056) (Business Account, Consumer Account) pair rate "
                                 "limit hit",
                         details="Message failed to send because there were too many "
                                 "messages sent from this phone number to the same phone "
                                 "number in a short period of time.")
            elif code == 130429:
                p = dict(message="(#130429) Rate limit hit",
                         details="Cloud API message throughput has been reached.")
            else:
                p = dict(message="(#4) Application request limit reached", transient=True)
            p.update(status=429, code=code, headers={"Retry-After": str(ra)})
        elif mode == "500":
            if wa:
                p = dict(status=500, code=131000, message="(#131000) Something went wrong",
                         details="Message failed to send due to an unknown error. When you "
                                 "get this error, try again later.")
            else:
                p = dict(status=500, code=2, transient=True,
                         message="An unexpected error has occurred. Please retry your "
                                 "request later.")
        for k in ("status", "message", "code", "subcode", "details"):
            if k in kw:
                p[k] = kw[k]
        return self._meta_err(p.pop("status"), p.pop("message"), p.pop("code"), **p)

    def _meta_token(self, req):
        auth = req.headers.get("authorization", "")
        if auth[:7].lower() == "bearer " or auth[:6].lower() == "oauth ":
            return auth.split(None, 1)[1].strip() if " " in auth else ""
        return req.query.get("access_token")

    def _meta_auth(self, req):
        """None if the token is acceptable, else the 401/190 answer."""
        if not self._tokens:
            return None
        tok = self._meta_token(req)
        if tok in self._tokens:
            return None
        if not tok:
            return self._meta_err(401, "An active access token must be used to query "
                                       "information about the current user.", 190)
        return self._meta_err(401, "Invalid OAuth access token - Cannot parse access token",
                              190)

    def _meta_404(self, req):
        return self._meta_err(404, "Unknown path components: %s" % req.path, 2500)

    def _meta_unsupported(self, req, obj_id):
        return self._meta_err(400, "Unsupported %s request. Object with ID '%s' does not "
                                   "exist, cannot be loaded due to missing permissions, or "
                                   "does not support this operation. Please read the Graph "
                                   "API documentation at https://developers.facebook.com/"
                                   "docs/graph-api" % (req.method.lower(), obj_id), 100,
                              subcode=33)

    def _meta_parts(self, req):
        m = _META_PREFIX_RE.match(req.path)
        if not m:
            return None
        return [urllib.parse.unquote(x) for x in req.path[m.end():].split("/")]

    def _route_whatsapp(self, req):
        if req.path.startswith("/_fake/"):
            return None
        parts = self._meta_parts(req)
        if req.method == "GET" and req.path.startswith("/media-bytes/"):
            req.op = "media"
            return self._authed(req, self._wa_media_bytes)
        if parts and len(parts) == 2 and parts[1] == "messages" and req.method == "POST":
            req.op = "mark_read" if (isinstance(req.json, dict) and "status" in req.json
                                     and "to" not in req.json) else "send"
            return self._authed(req, lambda r: self._wa_send(r, parts[0]))
        if parts and len(parts) == 2 and parts[1] == "media" and req.method == "POST":
            req.op = "upload"
            return self._authed(req, self._wa_upload)
        if parts and len(parts) == 1 and parts[0] and req.method == "GET":
            req.op = "media_info"
            return self._authed(req, lambda r: self._wa_media_info(r, parts[0]))
        return self._meta_404

    def _authed(self, req, fn):
        def run(r):
            bad = self._meta_auth(r)
            return bad if bad else fn(r)
        return run

    def _wa_invalid(self, details, message="(#100) Invalid parameter", code=100):
        return self._meta_err(400, message, code, details=details)

    def _wa_send(self, req, pnid):
        b = req.json
        if not isinstance(b, dict):
            return self._wa_invalid("Request body is not a JSON object")
        if "messaging_product" not in b:
            return self._wa_invalid("The parameter messaging_product is required.",
                                    "(#100) The parameter messaging_product is required.")
        if b.get("messaging_product") != "whatsapp":
            return self._wa_invalid('Param messaging_product must be one of {WHATSAPP} - '
                                    'got "%s".' % b.get("messaging_product"))
        if req.op == "mark_read":
            if b.get("status") != "read" or not isinstance(b.get("message_id"), str):
                return self._wa_invalid("Param status must be read and message_id a string")
            return _Answer(200, {"success": True})
        to = b.get("to")
        if not isinstance(to, str) or not to.strip():
            return self._wa_invalid("The parameter to is required.",
                                    "(#100) The parameter to is required.")
        digits = re.sub(r"\D", "", to)
        if not digits:
            return self._wa_invalid("Param to is not a valid WhatsApp phone number")
        typ = b.get("type")
        if typ is None:
            return self._wa_invalid("The parameter type is required.",
                                    "(#100) The parameter type is required.")
        if typ not in WA_TYPES:
            return self._wa_invalid('Param type must be one of {%s} - got "%s".'
                                    % (", ".join(t.upper() for t in WA_TYPES), typ))
        obj = b.get(typ)
        if not isinstance(obj, (dict, list)):
            return self._wa_invalid("The parameter %s is required." % typ,
                                    "(#100) The parameter %s is required." % typ)
        if typ == "text":
            text = obj.get("body") if isinstance(obj, dict) else None
            if not isinstance(text, str) or not text:
                return self._wa_invalid("The parameter text['body'] is required.",
                                        "(#100) The parameter text['body'] is required.")
            if len(text) > 4096:
                return self._wa_invalid("Param text['body'] must be at most 4096 "
                                        "characters long.")
        elif typ in WA_MEDIA:
            if not isinstance(obj, dict) or not (obj.get("id") or obj.get("link")):
                return self._wa_invalid("Param %s must contain id or link" % typ)
            if len(obj.get("caption") or "") > 1024:
                return self._wa_invalid("Param %s['caption'] must be at most 1024 "
                                        "characters long." % typ)
        ctx = b.get("context")
        if ctx is not None and not (isinstance(ctx, dict)
                                    and isinstance(ctx.get("message_id"), str)):
            return self._wa_invalid("Param context['message_id'] must be a string")
        wamid = self._new_wamid(digits)
        req.result_id = wamid
        entry = self._find_channel(account=pnid) if self._channels else None
        if self._channels and entry is None:
            self._cb_error("no channel registered for phone_number_id %s" % pnid)
        if entry:
            self._schedule(req.t, entry, [self._wa_status_job(entry, pnid, wamid, digits, s)
                                          for s in entry["statuses"]])
        return _Answer(200, {"messaging_product": "whatsapp",
                             "contacts": [{"input": to, "wa_id": digits}],
                             "messages": [{"id": wamid}]})

    def _new_wamid(self, digits):
        n = next(self._ids)
        raw = (b"\x1c\x18" + bytes([len(digits) & 0xFF]) + digits.encode() +
               b"\x15\x02\x00\x11\x18\x12" +
               ("%04X" % (n & 0xFFFF) + os.urandom(7).hex().upper()).encode() + b"\x00")
        return "wamid." + base64.b64encode(raw).decode()

    def _cb_error(self, text):
        with self._cond:
            rec = {"url": None, "path": None, "body": None, "json": None, "status": None,
                   "attempts": 0, "error": text, "t": time.monotonic()}
            self.callback_errors.append(rec)
            self._cond.notify_all()

    def _wa_status_job(self, entry, pnid, wamid, recipient, status):
        def job():
            ch = entry["channel"]
            now = int(time.time())
            st = {"id": wamid, "status": status, "timestamp": str(now),
                  "recipient_id": recipient}
            conv_id = hashlib.md5(("%s:%s" % (ch.get("id"), recipient)).encode()).hexdigest()
            if status == "sent":
                st["conversation"] = {"id": conv_id, "expiration_timestamp": str(now + 86400),
                                      "origin": {"type": "service"}}
            if status in ("sent", "delivered"):
                if status == "delivered":
                    st["conversation"] = {"id": conv_id, "origin": {"type": "service"}}
                st["pricing"] = {"billable": False, "pricing_model": "PMP",
                                 "category": "service", "type": "free_customer_service"}
            if status == "failed":
                st["errors"] = [{
                    "code": 131047, "title": "Re-engagement message",
                    "message": "Re-engagement message",
                    "error_data": {"details": "Message failed to send because more than 24 "
                                              "hours have passed since the customer last "
                                              "replied to this number."},
                    "href": "/documentation/business-messaging/whatsapp/support/error-codes"}]
            doc = {"object": "whatsapp_business_account", "entry": [{
                "id": str(ch.get("waba_id") or self.waba_id),
                "changes": [{"value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": self.display_phone_number,
                                 "phone_number_id": str(ch.get("account_id") or pnid)},
                    "statuses": [st]}, "field": "messages"}]}]}
            return "/webhooks/whatsapp/%s" % ch["id"], _dumps(doc)
        return job

    def _wa_upload(self, req):
        f = next(iter(req.files.values()), None) if req.files else None
        if (req.form or {}).get("messaging_product") != "whatsapp" or f is None:
            return self._wa_invalid("Upload needs messaging_product=whatsapp and a file")
        mid = str(1000000000000000 + next(self._ids) * 7919 + int.from_bytes(os.urandom(2),
                                                                             "big"))
        self.add_media(mid, f[2], (req.form or {}).get("type") or f[1])
        req.result_id = mid
        return _Answer(200, {"id": mid})

    def _wa_media_info(self, req, media_id):
        phone = self.phone_numbers.get(media_id)
        if phone is not None:  # GET /v{N}/{phone_number_id}: the number's fields
            fields = req.query.get("fields")
            out = dict(phone) if not fields else {k: phone[k] for k in fields.split(",")
                                                  if k in phone}
            out["id"] = media_id
            return _Answer(200, out)
        m = self._media.get(media_id)
        if m is None:
            return self._meta_unsupported(req, media_id)
        return _Answer(200, {"messaging_product": "whatsapp", "url": self.media_url(media_id),
                             "mime_type": m["mime"], "sha256": m["sha256"],
                             "file_size": len(m["data"]), "id": media_id})

    def _wa_media_bytes(self, req):
        m = self._media.get(urllib.parse.unquote(req.path[len("/media-bytes/"):]))
        if m is None:
            return _Answer(404, b"", ctype="text/plain")
        return _Answer(200, m["data"], ctype=m["mime"])

    # Instagram
    def _route_instagram(self, req):
        if req.path.startswith("/_fake/"):
            return None
        if req.method == "GET" and req.path.startswith("/cdn/"):
            req.op = "media"
            return self._ig_cdn
        parts = self._meta_parts(req)
        if parts and len(parts) == 2 and parts[1] == "messages" and req.method == "POST":
            req.op = ("sender_action" if isinstance(req.json, dict)
                      and "sender_action" in req.json and "message" not in req.json
                      else "send")
            return self._authed(req, lambda r: self._ig_send(r, parts[0]))
        if parts and len(parts) == 1 and parts[0] and req.method == "GET":
            req.op = "profile"
            return self._authed(req, lambda r: self._ig_profile(r, parts[0]))
        return self._meta_404

    def _ig_invalid(self, message, subcode=None):
        return self._meta_err(400, message, 100, subcode=subcode)

    def _ig_send(self, req, who):
        b = req.json
        if not isinstance(b, dict):
            return self._ig_invalid("(#100) Request body is not a JSON object")
        rcpt = b.get("recipient")
        rid = rcpt.get("id") if isinstance(rcpt, dict) else None
        if isinstance(rid, int) and not isinstance(rid, bool):
            rid = str(rid)
        if not isinstance(rid, str) or not rid:
            return self._ig_invalid("(#100) The parameter recipient is required")
        if req.op == "sender_action":
            if b["sender_action"] not in ("typing_on", "typing_off", "mark_seen", "react",
                                          "unreact"):
                return self._ig_invalid("(#100) Param sender_action must be one of "
                                        "{typing_on, typing_off, mark_seen}")
            return _Answer(200, {"recipient_id": rid})
        msg = b.get("message")
        if not isinstance(msg, dict) or not msg:
            return self._ig_invalid("(#100) The parameter message is required")
        text = msg.get("text")
        att = msg.get("attachment")
        if text is None and att is None:
            return self._ig_invalid("(#100) Param message must contain text or attachment")
        if text is not None:
            if not isinstance(text, str) or not text:
                return self._ig_invalid("(#100) Param message[text] must be a non-empty "
                                        "UTF-8 encoded string")
            if len(text.encode("utf-8")) > 1000:
                return self._ig_invalid("(#100) Length of param message[text] must be less "
                                        "than or equal to 1000")
        if att is not None:
            if not isinstance(att, dict) or att.get("type") not in IG_ATTACHMENTS:
                return self._ig_invalid("(#100) Param message[attachment][type] must be one "
                                        "of {image, audio, video, file, like_heart, "
                                        "MEDIA_SHARE}")
            pl = att.get("payload")
            if att["type"] != "like_heart" and not (
                    isinstance(pl, dict) and (pl.get("url") or pl.get("attachment_id")
                                              or pl.get("id"))):
                return self._ig_invalid("(#100) Param message[attachment][payload][url] is "
                                        "required")
        token = self._meta_token(req)
        entry = self._find_channel(account=None if who == "me" else who,
                                   token=token) if self._channels else None
        acct = str(entry["channel"]["account_id"]) if entry else (
            self.account_id if who == "me" else who)
        mid = self._new_mid(acct)
        req.result_id = mid
        if self._channels and entry is None:
            self._cb_error("no channel registered for Instagram account %s" % who)
        if entry:
            self._schedule(req.t, entry, [self._ig_event_job(entry, acct, rid, mid, msg, ev)
                                          for ev in entry["statuses"]])
        return _Answer(200, {"recipient_id": rid, "message_id": mid})

    def _new_mid(self, acct):
        n = next(self._ids)
        tail = "%d%015d" % (n, int.from_bytes(os.urandom(6), "big"))
        return base64.b64encode(("ig_item:1:IGMessageID:%s:%s" % (acct, tail)).encode()
                                ).decode().rstrip("=")

    def _ig_event_job(self, entry, acct, igsid, mid, msg, event):
        def job():
            now = int(time.time() * 1000)
            if event == "echo":
                m = {"mid": mid}
                if msg.get("text") is not None:
                    m["text"] = msg["text"]
                m["is_echo"] = True
                att = msg.get("attachment")
                if att:
                    pl = att.get("payload") or {}
                    m["attachments"] = [{"type": att.get("type"),
                                         "payload": {"url": pl.get("url") or
                                                     "https://lookaside.fbsbx.com/"
                                                     "ig_messaging_cdn/?asset_id=%s"
                                                     % (pl.get("attachment_id") or "0")}}]
                item = {"sender": {"id": acct}, "recipient": {"id": igsid},
                        "timestamp": now, "message": m}
            elif event == "read":
                item = {"sender": {"id": igsid}, "recipient": {"id": acct},
                        "timestamp": now, "read": {"mid": mid}}
            else:
                raise ValueError("unknown Instagram callback event %r" % event)
            doc = {"object": "instagram",
                   "entry": [{"time": now, "id": acct, "messaging": [item]}]}
            return "/webhooks/instagram/%s" % entry["channel"]["id"], _dumps(doc)
        return job

    def _ig_profile(self, req, igsid):
        p = self._profiles.get(igsid)
        if p is None:
            return self._meta_unsupported(req, igsid)
        fields = req.query.get("fields")
        out = dict(p) if not fields else {k: p[k] for k in fields.split(",") if k in p}
        out["id"] = igsid
        return _Answer(200, out)

    def _ig_cdn(self, req):
        m = self._media.get(urllib.parse.unquote(req.path[len("/cdn/"):]))
        if m is None:
            return _Answer(404, b"", ctype="text/plain")
        return _Answer(200, m["data"], ctype=m["mime"])

    # Telegram
    def _tg_err(self, code, description, parameters=None):
        body = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return _Answer(code, body)

    def _tg_error_mode(self, mode, kw):
        if mode == "invalid":
            st, d, params = 400, "Bad Request: chat not found", None
        elif mode == "token":
            st, d, params = 401, "Unauthorized", None
        elif mode == "blocked":
            st, d, params = 403, "Forbidden: bot was blocked by the user", None
        elif mode == "rate":
            ra = kw.get("retry_after", 1)
            st, d, params = 429, "Too Many Requests: retry after %d" % ra, {"retry_after": ra}
        elif mode == "conflict":
            st, d, params = 409, TG_CONFLICT_POLL, None
        else:  # "500"
            st, d, params = 500, "Internal Server Error", None
        return self._tg_err(kw.get("status", st), kw.get("message", d), params)

    def _route_telegram(self, req):
        if req.path.startswith("/_fake/"):
            return None
        m = re.match(r"^/file/bot([^/]+)/(.+)$", req.path)
        if m and req.method == "GET":
            req.op = "file"
            token, fpath = m.group(1), urllib.parse.unquote(m.group(2))
            return lambda r: self._tg_file(r, token, fpath)
        m = re.match(r"^/bot([^/]+)/([A-Za-z]+)$", req.path)
        if not m or req.method not in ("GET", "POST"):
            return lambda r: self._tg_err(404, "Not Found")
        token, method = m.group(1), m.group(2)
        names = {n.lower(): n for n in ("sendMessage", "sendPhoto", "sendDocument",
                                        "sendChatAction", "getUpdates", "setWebhook",
                                        "deleteWebhook", "getWebhookInfo", "getMe",
                                        "getFile")}
        method = names.get(method.lower(), method)
        req.op = method

        def run(r):
            if self._tokens and token not in self._tokens:
                return self._tg_err(401, "Unauthorized")
            fn = getattr(self, "_tg_" + method, None) if method in names.values() else None
            if fn is None:
                return self._tg_err(404, "Not Found")
            if r.body and r.json is None and r.form is None:
                return self._tg_err(400, "Bad Request: can't parse JSON")
            return fn(r, r.params())
        return run

    def _tg_chat(self, params):
        cid = params.get("chat_id")
        if cid is None or cid == "":
            return None, self._tg_err(400, "Bad Request: chat_id is empty")
        if isinstance(cid, bool):
            return None, self._tg_err(400, "Bad Request: chat not found")
        if isinstance(cid, str):
            if not re.match(r"^-?\d{1,20}$", cid.strip()):
                return None, self._tg_err(400, "Bad Request: chat not found")
            cid = int(cid)
        if not isinstance(cid, int):
            return None, self._tg_err(400, "Bad Request: chat not found")
        return cid, None

    def _tg_message(self, req, cid, extra):
        with self._cond:
            n = self._chat_msg_ids.get(cid, 0) + 1
            self._chat_msg_ids[cid] = n
        req.result_id = n
        msg = {"message_id": n, "from": {k: self.bot[k] for k in
                                         ("id", "is_bot", "first_name", "username")},
               "chat": {"id": cid, "first_name": "Aigerim", "type": "private"},
               "date": int(time.time())}
        msg.update(extra)
        return _Answer(200, {"ok": True, "result": msg})

    @staticmethod
    def _utf16_len(s):
        return len(s.encode("utf-16-le")) // 2

    def _tg_sendMessage(self, req, p):
        cid, err = self._tg_chat(p)
        if err:
            return err
        text = p.get("text")
        if not isinstance(text, str) or not text.strip():
            return self._tg_err(400, "Bad Request: message text is empty")
        if self._utf16_len(text) > 4096:
            return self._tg_err(400, "Bad Request: message is too long")
        return self._tg_message(req, cid, {"text": text})

    def _tg_file_ref(self, req, p, field):
        """(file_id, name, mime, data or None) of a photo/document parameter, or None."""
        v = p.get(field)
        if field in req.files:
            fname, mime, data = req.files[field]
            return None, fname, mime, data
        if isinstance(v, str) and v.startswith("attach://") and v[9:] in req.files:
            fname, mime, data = req.files[v[9:]]
            return None, fname, mime, data
        if isinstance(v, str) and v:
            if v in self._media:
                m = self._media[v]
                return v, os.path.basename(m["file_path"]), m["mime"], m["data"]
            name = os.path.basename(urllib.parse.urlsplit(v).path) or "file"
            return None, name, mimetypes.guess_type(name)[0] or "application/octet-stream", None
        return None

    def _tg_caption(self, p, extra):
        cap = p.get("caption")
        if isinstance(cap, str) and cap:
            if self._utf16_len(cap) > 1024:
                return self._tg_err(400, "Bad Request: message caption is too long")
            extra["caption"] = cap
        return None

    def _tg_new_file(self, data, mime, prefix):
        fid = prefix + base64.urlsafe_b64encode(os.urandom(33)).decode()
        if data is not None:
            self.add_media(fid, data, mime)
        return fid

    def _tg_sendPhoto(self, req, p):
        cid, err = self._tg_chat(p)
        if err:
            return err
        ref = self._tg_file_ref(req, p, "photo")
        if ref is None:
            return self._tg_err(400, "Bad Request: there is no photo in the request")
        fid, _, mime, data = ref
        size = len(data) if data is not None else 54321
        sizes = []
        for w, h, k in ((90, 67, 0.02), (320, 240, 0.2), (800, 600, 1.0)):
            f = fid if (fid and k == 1.0) else self._tg_new_file(
                data if k == 1.0 else None, mime or "image/jpeg", "AgACAgIAAxkDAAI")
            sizes.append({"file_id": f, "file_unique_id": "AQAD" + f[-12:],
                          "file_size": max(1, int(size * k)), "width": w, "height": h})
        extra = {"photo": sizes}
        bad = self._tg_caption(p, extra)
        return bad or self._tg_message(req, cid, extra)

    def _tg_sendDocument(self, req, p):
        cid, err = self._tg_chat(p)
        if err:
            return err
        ref = self._tg_file_ref(req, p, "document")
        if ref is None:
            return self._tg_err(400, "Bad Request: there is no document in the request")
        fid, name, mime, data = ref
        fid = fid or self._tg_new_file(data, mime, "BQACAgIAAxkDAAI")
        extra = {"document": {"file_name": name, "mime_type": mime, "file_id": fid,
                              "file_unique_id": "AgAD" + fid[-12:],
                              "file_size": len(data) if data is not None else 54321}}
        bad = self._tg_caption(p, extra)
        return bad or self._tg_message(req, cid, extra)

    def _tg_sendChatAction(self, req, p):
        _, err = self._tg_chat(p)
        if err:
            return err
        if not p.get("action"):
            return self._tg_err(400, "Bad Request: action is empty")
        return _Answer(200, {"ok": True, "result": True})

    def _tg_getMe(self, req, p):
        return _Answer(200, {"ok": True, "result": dict(self.bot)})

    def _tg_getUpdates(self, req, p):
        try:
            offset = int(p.get("offset") or 0)
            timeout = float(p.get("timeout") or 0)
            limit = min(100, max(1, int(p.get("limit") or 100)))
        except (TypeError, ValueError):
            return self._tg_err(400, "Bad Request: wrong parameter value")
        with self._cond:
            if self.webhook:
                return self._tg_err(409, TG_CONFLICT_WEBHOOK)
            self._poll_gen += 1
            gen = self._poll_gen
            self._cond.notify_all()
            if offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif offset < 0:
                self._updates = self._updates[offset:]
            end = time.monotonic() + max(0.0, min(timeout, self.max_poll_hold))
            while True:
                if self._poll_gen != gen:
                    return self._tg_err(409, TG_CONFLICT_POLL)
                if self._updates or self._stop_event.is_set():
                    break
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.polls_waiting += 1
                try:
                    self._cond.wait(left)
                finally:
                    self.polls_waiting -= 1
            result = [dict(u) for u in self._updates[:limit]]
        return _Answer(200, {"ok": True, "result": result})

    def _tg_setWebhook(self, req, p):
        url = p.get("url")
        if not url:
            return self._tg_deleteWebhook(req, p)
        if not isinstance(url, str) or not url.lower().startswith("https://"):
            return self._tg_err(400, "Bad Request: bad webhook: An HTTPS URL must be "
                                     "provided for webhook")
        st = p.get("secret_token")
        if st is not None and not (isinstance(st, str) and _SECRET_TOKEN_RE.match(st)):
            return self._tg_err(400, "Bad Request: secret token contains unallowed "
                                     "characters")
        with self._cond:
            same = self.webhook is not None and self.webhook.get("url") == url
            self.webhook = {k: v for k, v in p.items()}
            if p.get("drop_pending_updates") in (True, "true", "True", "1"):
                self._updates = []
            self._cond.notify_all()
        return _Answer(200, {"ok": True, "result": True,
                             "description": "Webhook is already set" if same
                             else "Webhook was set"})

    def _tg_deleteWebhook(self, req, p):
        with self._cond:
            had = self.webhook is not None
            self.webhook = None
            if p.get("drop_pending_updates") in (True, "true", "True", "1"):
                self._updates = []
        return _Answer(200, {"ok": True, "result": True,
                             "description": "Webhook was deleted" if had
                             else "Webhook is already deleted"})

    def _tg_getWebhookInfo(self, req, p):
        with self._cond:
            wh = self.webhook or {}
            return _Answer(200, {"ok": True, "result": {
                "url": wh.get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}})

    def _tg_getFile(self, req, p):
        fid = p.get("file_id")
        if not fid:
            return self._tg_err(400, "Bad Request: file_id is empty")
        m = self._media.get(str(fid))
        if m is None:
            return self._tg_err(400, "Bad Request: invalid file_id")
        return _Answer(200, {"ok": True, "result": {
            "file_id": fid, "file_unique_id": m["unique"], "file_size": len(m["data"]),
            "file_path": m["file_path"]}})

    def _tg_file(self, req, token, fpath):
        if self._tokens and token not in self._tokens:
            return self._tg_err(404, "Not Found")
        for m in list(self._media.values()):
            if m["file_path"] == fpath:
                return _Answer(200, m["data"], ctype=m["mime"])
        return self._tg_err(404, "Not Found")

    # development control endpoints (not recorded)
    def _control(self, req):
        if req.path == "/_fake/update" and req.method == "POST" and self.kind == "telegram":
            if not isinstance(req.json, dict):
                return _Answer(400, {"ok": False, "description": "an Update object"})
            return _Answer(200, {"ok": True, "update_id": self.push_update(req.json)})
        if req.path == "/_fake/requests" and req.method == "GET":
            with self._cond:
                out = [{"method": r.method, "path": r.path, "op": r.op, "status": r.status,
                        "json": r.json, "result_id": r.result_id} for r in self.requests]
            return _Answer(200, out)
        return _Answer(404, {"error": "unknown control path"})


def _op_matches(on, op):
    if on == "any":
        return True
    if on == "send":
        return op == "send" or bool(re.match(r"^send[A-Z]", op or ""))
    return on == op


# --- command line ---
def _secret(ch, key):
    if ch.get(key):
        return ch[key]
    path = ch.get(key + "_file")
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    return None


def _hub_from_config(cfg):
    listen = (cfg.get("http") or {}).get("listen")
    if not listen:
        return None
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = "[%s]" % host
    return "http://%s:%s" % (host, port)


def _fresh_ca(folder):
    """TestCA(folder), made anew when the one there is over a day old (its certificates
    are valid for two days)."""
    try:
        old = time.time() - os.path.getmtime(os.path.join(folder, "ca.pem")) > 86400
    except OSError:
        old = False
    if old:
        for n in ("ca.pem", "ca.key", "ca.srl", "fakeplat.pem", "fakeplat.key",
                  "fakeplat.csr", "fakeplat.ext"):
            try:
                os.remove(os.path.join(folder, n))
            except OSError:
                pass
    return testca.TestCA(folder)


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="Fake WhatsApp, Telegram and Instagram APIs "
                                             "over HTTPS for a local hubd.")
    ap.add_argument("--dir", required=True, help="folder for the CA and fakeplat.json")
    ap.add_argument("--hub", help="hubd's base URL for status webhooks (default: the "
                                  "config's http.listen)")
    ap.add_argument("--config", help="hubd's JSON config: its WhatsApp and Instagram "
                                     "channels get status/echo webhooks")
    for k in KINDS:
        ap.add_argument("--%s-port" % k, type=int, default=0)
    ap.add_argument("--delay", type=float, default=0.5,
                    help="seconds between status webhooks (default 0.5)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    os.makedirs(args.dir, exist_ok=True)
    ca = _fresh_ca(args.dir)
    cfg = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            cfg = json.load(f)
    hub = args.hub or _hub_from_config(cfg)
    fakes = {}
    for k in KINDS:
        fakes[k] = FakePlatform(k, ca, port=getattr(args, "%s_port" % k),
                                verbose=args.verbose).start()
    if hub:
        for ch in cfg.get("channels") or []:
            kind = ch.get("kind")
            if kind not in ("whatsapp", "instagram") or not ch.get("id"):
                continue
            try:
                c = dict(ch, app_secret=_secret(ch, "app_secret"),
                         access_token=_secret(ch, "access_token"))
            except OSError as e:
                sys.stderr.write("fakeplat: channel %s: %s (no callbacks)\n" % (ch["id"], e))
                continue
            if not c["app_secret"]:
                continue
            fakes[kind].callback(hub, c, delay=args.delay)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    out = os.path.join(args.dir, "fakeplat.json")
    info = {k: f.base_url for k, f in fakes.items()}
    info.update(ca=os.path.abspath(ca.ca), pid=os.getpid())
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    os.replace(tmp, out)
    if args.verbose:
        sys.stderr.write("fakeplat: %s\n" % json.dumps(info))
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for f in fakes.values():
            f.stop()
        try:
            os.remove(out)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
