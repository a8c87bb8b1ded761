"""tests/support/fakeai.py - a fake OpenAI-compatible chat completions provider for hubd's AI
responder: POST /v1/chat/completions (and GET /v1/models) in OpenAI's wire format, over
plain HTTP or, given a tests/support/testca TestCA, HTTPS (hubd's client trusts its ca.pem),
on 127.0.0.1 and a free port, in background threads, HTTP/1.1 with keep-alive. It records
every request, appends every request body to a JSON-lines file when given one (so anyone can
see exactly what would leave the hub), and answers from a script. Python stdlib only.

Use from a test:

    from support import fakeai, testca
    srv = fakeai.FakeAI()                        # HTTP; FakeAI(ca=testca.TestCA(d)): HTTPS
    srv.start()                                  # also: with FakeAI(...) as srv:
    self.addCleanup(srv.stop)
    srv.base_url                                 # "http://127.0.0.1:PORT" (no /v1)
    srv.expect_key("sk-test-...")                # optional: another Bearer key -> 401
    srv.script("echo_marker", type="PHONE")      # optional: how the next request is answered
    ... hubd asks ...
    reqs = srv.wait_requests(1, timeout=5)       # the recorded requests (Request objects)
    srv.stop()

Request (srv.requests, in order of receipt; recorded whatever the answer):
    method, target (as sent), path (without query), query (dict, first values), headers
    (dict, lower-case names), body (bytes, exact), json (parsed body or None), t
    (time.monotonic() at receipt), conn (connection number: equal for requests on one
    keep-alive connection), mode (the script mode that answered it), status (the answered
    HTTP status; None if stalled or reset), answer (the answered JSON or None), content (the
    answer's message content, for a 200), done (threading.Event set once answered or
    dropped); messages() -> the request's messages (list of dicts, [] if none),
    texts(role=None) -> their contents as strings (of one role when given).

FakeAI(ca=None, port=0, host="127.0.0.1", log_path=None, verbose=False, cert_name="fakeai")
    start() / stop()          start the server thread / stop it, closing every connection
                              (stalled and trickling ones too); idempotent
    base_url, port, log_path
    requests, wait_requests(n, timeout=5) -> list (raises TimeoutError)
    clear()                   forget recorded requests and queued script entries
    expect_key(*keys)         accepted API keys (Authorization: Bearer KEY); none: any, and
                              none needed (the default, like a local llama.cpp server)
    model = None              when set, another "model" -> 404 model_not_found
    default(mode, **kw)       how requests are answered when the script is empty
                              (initially "plain")
    script(mode, count=1, **kw)
        Queues a behaviour for the next `count` chat completion requests (first in, first
        out). Modes:
        "plain"          200 with a short polite answer in the language of the last user
                         message (Kazakh letters: kk, other Cyrillic: ru, else en); kw text
                         replaces it. Usage token counts in every 200 with content.
        "text"           200 with kw text as the content (markers and all)
        "echo_marker"    200 with kw template (default "Ваш номер: {marker}. Верно?") where
                         {marker} is the first marker "[TYPE_n]" of kw type (default "PHONE")
                         in the user messages (kw roles=("user",) to look elsewhere, e.g.
                         ("system", "user", "assistant")); kw fallback (default "Спасибо!")
                         when there is none
        "echo_all"       200 with every distinct marker of the user messages, space-separated
        "unknown_marker" 200 with kw template (default "Позвоните нам: {marker}.") holding a
                         marker the request never had: kw marker (default "[PHONE_99]")
        "reveal"         200 with an answer that repeats all earlier context - the system
                         message and every message - as a model tricked into it would
        "no_content"     200 with content "" and kw finish_reason (default "content_filter")
        "refusal"        200 with content null and a refusal
        "invalid_json"   200 with an HTML page
        "error"          kw status (400 default, 401, 403, 404, 429, 500, 503) with OpenAI's
                         body {"error":{"message","type","param","code"}} for that status;
                         kw message, type, param, code override; 429 (and 503) carry
                         Retry-After: kw retry_after (default 1; None: no header)
        "400" "401" "403" "404" "429" "500" "503"   the same, as "error" with that status
        "quota"          429 insufficient_quota ("You exceeded your current quota ..."),
                         without Retry-After
        "stall"          read the request, never answer; close when the server stops or
                         after kw seconds (then without an answer)
        "reset"          read the request, then close the TCP connection with an RST
        "delay"          answer as the default would after kw seconds (default 1)
        "slow"           answer as the default would, chunked, one byte a chunk every kw
                         interval_ms (default 50) milliseconds
        "custom"         kw status (int), body (dict/list/bytes/str), headers (dict)
        Modes that answer (delay, slow) take the kw of the mode they answer as: kw then
        ("plain" default), e.g. script("slow", interval_ms=5, then="echo_marker").

Validation as OpenAI does: POST /v1/chat/completions with a JSON object holding "model" (a
string) and "messages" (a non-empty list of objects with a role of system, developer, user,
assistant or tool, and a content that is a string, a list of parts or, for assistant, null);
"stream": true is refused (the fake does not stream); otherwise 400 invalid_request_error
with the param. Another path: 404 "Invalid URL (POST /v1/...)". GET /v1/models lists
"fake-model".

Log file: every request's body, one line each, appended: the exact bytes when they are JSON
without a newline (hubd's always are), else the JSON re-serialized on one line, else
{"_invalid_body": "<the bytes as text>"}.

Command line (for `make run`): runs until SIGTERM/SIGINT:

    python3 tests/support/fakeai.py --dir DIR [--port N] [--https] [--answer TEXT]
        [--verbose]

It appends every request body to DIR/requests.jsonl and writes DIR/fakeai.json =
{"base_url": ..., "requests": DIR/requests.jsonl, "ca": DIR/ca.pem (with --https),
"pid": PID} once listening (removed at exit). With --https it makes (or reuses, when under
a day old) a TestCA in DIR. Development helpers (not recorded): POST /_fake/script
{"mode": ..., "count": N, ...kw} queues a behaviour; GET /_fake/requests lists what was
received. Quiet unless --verbose.
"""
import itertools
import json
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

MARKER_RE = re.compile(r"\[([A-Z]+)_(\d+)\]")
ROLES = ("system", "developer", "user", "assistant", "tool")
KAZAKH = set("әғқңөұүһіӘҒҚҢӨҰҮҺІ")

PLAIN = {
    "ru": "Спасибо за ваш вопрос! Чем ещё могу помочь?",
    "kk": "Сұрағыңызға рахмет! Тағы немен көмектесе аламын?",
    "en": "Thank you for your question! How else can I help?",
}

# OpenAI's error bodies, by status: (message, type, code)
ERRORS = {
    400: ("Invalid value for 'messages': the request could not be processed.",
          "invalid_request_error", None),
    401: ("Incorrect API key provided: {key}. You can find your API key at "
          "https://platform.openai.com/account/api-keys.", "invalid_request_error",
          "invalid_api_key"),
    403: ("Project `proj_fake` does not have access to model `{model}`",
          "invalid_request_error", "model_not_found"),
    404: ("The model `{model}` does not exist or you do not have access to it.",
          "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for {model} in organization org-fake on requests per min "
          "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit "
          "https://platform.openai.com/account/rate-limits to learn more.", "requests",
          "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!",
          "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error",
          None),
}
QUOTA = ("You exceeded your current quota, please check your plan and billing details. For "
         "more information on this error, read the docs: "
         "https://platform.openai.com/docs/guides/error-codes/api-errors.",
         "insufficient_quota", "insufficient_quota")

_ANSWERING = {"plain", "text", "echo_marker", "echo_all", "unknown_marker", "reveal",
              "no_content", "refusal", "invalid_json"}
_MODES = _ANSWERING | {"error", "quota", "stall", "reset", "delay", "slow", "custom"} | {
    str(s) for s in ERRORS}


def _dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def language(text):
    """"kk", "ru" or "en" as hubd tells a customer's language (assistant/dialog.h)."""
    if any(c in KAZAKH for c in text):
        return "kk"
    cyr = sum(1 for c in text if "\u0400" <= c <= "\u04ff")
    lat = sum(1 for c in text if c.isascii() and c.isalpha())
    if cyr and cyr >= lat:
        return "ru"
    return "en"


def mask_key(key):
    """A key as OpenAI names a wrong one: its start, asterisks, its last four."""
    if not key:
        return "<empty>"
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def _text_of(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


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
        self.mode = None
        self.status = None
        self.answer = None
        self.content = None
        self.done = threading.Event()
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def messages(self):
        if isinstance(self.json, dict) and isinstance(self.json.get("messages"), list):
            return [m for m in self.json["messages"] if isinstance(m, dict)]
        return []

    def texts(self, role=None):
        return [_text_of(m.get("content")) for m in self.messages()
                if role is None or m.get("role") == role]

    def __repr__(self):
        return "<Request %s %s mode=%s status=%s %r>" % (self.method, self.path, self.mode,
                                                          self.status, self.body[:120])


class _Answer:
    def __init__(self, status, body, headers=None, ctype="application/json",
                 interval_ms=None):
        self.status = status
        self.obj = body if isinstance(body, (dict, list)) else None
        if isinstance(body, (dict, list)):
            body = _dumps(body)
        elif isinstance(body, str):
            body = body.encode("utf-8")
        self.body = body or b""
        self.headers = list((headers or {}).items())
        self.ctype = ctype
        self.interval_ms = interval_ms  # slow: one byte a chunk, this far apart


class _Handler(fakehttp.Handler):
    server_version = "fakeai"

    def _write(self, ans, req):
        fake = self.server.fake
        req.status = ans.status
        req.answer = ans.obj
        self.send_response(ans.status)
        self.send_header("Content-Type", ans.ctype)
        for k, v in ans.headers:
            self.send_header(k, v)
        if ans.interval_ms is None:
            self.send_header("Content-Length", str(len(ans.body)))
            self._headers_buffer.append(b"\r\n")
            self._headers_buffer.append(ans.body)  # the head and the body in one write
            self.flush_headers()
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for i in range(len(ans.body)):
            if fake._stop_event.wait(ans.interval_ms / 1000.0):
                self.close_connection = True
                return
            self.wfile.write(b"1\r\n%s\r\n" % ans.body[i:i + 1])
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class FakeAI:
    """A fake OpenAI-compatible provider (see the module docstring)."""

    Request = Request
    Answer = _Answer
    log_name = "fakeai"
    socket_timeout = 30

    def __init__(self, ca=None, port=0, host="127.0.0.1", log_path=None, verbose=False,
                 cert_name="fakeai"):
        self.ca = ca
        self.host = host
        self.port = port
        self.log_path = log_path
        self.verbose = verbose
        self._ssl = ca.ssl_context(cert_name) if ca else None
        self._cond = threading.Condition()
        self._log_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._tl = threading.local()
        self._conn_seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._conns = set()
        self._server = None
        self._thread = None
        self._stopped = False
        self.requests = []
        self.tls_errors = []
        self._script = []
        self._default = ("plain", {})
        self._keys = set()
        self.model = None

    # --- lifecycle ---
    def start(self):
        if self._server:
            return self
        self._server = fakehttp.Server((self.host, self.port), _Handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, name="fakeai",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops serving, wakes stalls and trickles, closes every connection."""
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

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self):
        return "%s://%s:%d" % ("https" if self._ssl else "http", self.host, self.port)

    # --- configuration ---
    def expect_key(self, *keys):
        with self._cond:
            self._keys = set(keys)

    @staticmethod
    def _check_mode(mode):
        mode = str(mode)
        if mode not in _MODES:
            raise ValueError("unknown mode %r (use one of %s)" % (mode, ", ".join(sorted(_MODES))))
        return mode

    def default(self, mode, **kw):
        mode = self._check_mode(mode)
        with self._cond:
            self._default = (mode, kw)

    def script(self, mode, count=1, **kw):
        mode = self._check_mode(mode)
        with self._cond:
            self._script.append([mode, int(count), kw])

    def clear(self):
        with self._cond:
            self.requests = []
            self._script = []

    def wait_requests(self, n, timeout=5.0):
        end = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError("fakeai: %d of %d requests after %.1f s"
                                       % (len(self.requests), n, timeout))
                self._cond.wait(left)
            return list(self.requests)

    # --- serving ---
    def _log(self, req):
        if not self.log_path:
            return
        if req.json is not None and b"\n" not in req.body:
            line = req.body
        elif req.json is not None:
            line = _dumps(req.json)
        else:
            line = _dumps({"_invalid_body": req.body.decode("utf-8", "replace")})
        with self._log_lock:
            with open(self.log_path, "ab") as f:
                f.write(line + b"\n")

    def _take(self):
        with self._cond:
            if self._script:
                entry = self._script[0]
                entry[1] -= 1
                if entry[1] <= 0:
                    self._script.pop(0)
                return entry[0], dict(entry[2])
            return self._default[0], dict(self._default[1])

    def _answer(self, req):
        if req.path.startswith("/_fake/"):
            return self._control(req)
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()
        if req.method == "POST":
            self._log(req)
        if req.method == "GET" and req.path in ("/v1/models", "/models"):
            return _Answer(200, {"object": "list", "data": [{
                "id": self.model or "fake-model", "object": "model", "created": 1700000000,
                "owned_by": "fakeai"}]})
        if req.method != "POST" or req.path not in ("/v1/chat/completions",
                                                    "/chat/completions"):
            return self._error(404, "Invalid URL (%s %s)" % (req.method, req.path),
                               "invalid_request_error", None, None)
        auth = req.headers.get("authorization", "")
        key = auth[7:] if auth.startswith("Bearer ") else ""
        with self._cond:
            keys = set(self._keys)
        if keys and key not in keys:
            req.mode = "401"
            msg = ERRORS[401][0].format(key=mask_key(key)) if key else (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
            return self._error(401, msg, "invalid_request_error", None,
                               "invalid_api_key" if key else None)
        bad = self._invalid(req)
        if bad:
            req.mode = "invalid"
            return bad
        if self.model and req.json["model"] != self.model:
            req.mode = "404"
            return self._error(404, ERRORS[404][0].format(model=req.json["model"]),
                               "invalid_request_error", None, "model_not_found")
        mode, kw = self._take()
        req.mode = mode
        return self._perform(req, mode, kw, key)

    def _invalid(self, req):
        j = req.json
        if not isinstance(j, dict):
            return self._error(400, "We could not parse the JSON body of your request. (HINT: "
                               "This likely means you aren't using your HTTP library "
                               "correctly. The OpenAI API expects a JSON payload, but what "
                               "was sent was not valid JSON.)", "invalid_request_error", None,
                               None)
        if not isinstance(j.get("model"), str) or not j["model"]:
            return self._error(400, "you must provide a model parameter",
                               "invalid_request_error", None, None)
        msgs = j.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return self._error(400, "Invalid 'messages': empty array. Expected an array with "
                               "minimum length 1, but got an empty array instead.",
                               "invalid_request_error", "messages", "empty_array")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in ROLES:
                return self._error(400, "Invalid value for 'messages[%d].role'." % i,
                                   "invalid_request_error", "messages[%d].role" % i,
                                   "invalid_value")
            c = m.get("content")
            if not (isinstance(c, (str, list)) or (c is None and m["role"] == "assistant")):
                return self._error(400, "Invalid type for 'messages[%d].content'." % i,
                                   "invalid_request_error", "messages[%d].content" % i,
                                   "invalid_type")
        if j.get("stream") is True:
            return self._error(400, "stream: true is not served by the fake provider",
                               "invalid_request_error", "stream", None)
        t = j.get("temperature")
        if t is not None and (not isinstance(t, (int, float)) or isinstance(t, bool)
                              or not 0 <= t <= 2):
            return self._error(400, "Invalid 'temperature': must be between 0 and 2.",
                               "invalid_request_error", "temperature", "invalid_value")
        mt = j.get("max_tokens")
        if mt is not None and (not isinstance(mt, int) or isinstance(mt, bool) or mt < 1):
            return self._error(400, "Invalid 'max_tokens': must be a positive integer.",
                               "invalid_request_error", "max_tokens", "invalid_value")
        return None

    def _error(self, status, message, etype, param, code, headers=None):
        return _Answer(status, {"error": {"message": message, "type": etype, "param": param,
                                          "code": code}}, headers)

    def _completion(self, req, content, finish_reason="stop", refusal=None, usage=True):
        j = req.json
        prompt = sum(len(t) for t in req.texts()) // 4 + 4 * len(req.messages())
        done = len(content or "") // 4 + 1
        obj = {
            "id": "chatcmpl-fake%06d" % next(self._ids),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": j.get("model"),
            "choices": [{"index": 0,
                         "message": {"role": "assistant", "content": content,
                                     "refusal": refusal},
                         "logprobs": None, "finish_reason": finish_reason}],
            "system_fingerprint": "fp_fakeai",
        }
        if usage:
            obj["usage"] = {"prompt_tokens": prompt, "completion_tokens": done,
                            "total_tokens": prompt + done}
        req.content = content
        return _Answer(200, obj)

    def _markers(self, req, roles):
        seen = []
        for m in req.messages():
            if m.get("role") not in roles:
                continue
            for mk in MARKER_RE.finditer(_text_of(m.get("content"))):
                if mk.group(0) not in seen:
                    seen.append(mk.group(0))
        return seen

    def _perform(self, req, mode, kw, key):
        if mode in ("delay", "slow"):
            then = kw.pop("then", "plain")
            if mode == "delay":
                if self._stop_event.wait(float(kw.pop("seconds", 1))):
                    return fakehttp.Drop("stall", 0)
                return self._perform(req, then, kw, key)
            interval = float(kw.pop("interval_ms", 50))
            ans = self._perform(req, then, kw, key)
            if isinstance(ans, _Answer):
                ans.interval_ms = interval
            return ans
        if mode == "plain":
            users = req.texts("user")
            text = kw.get("text") or PLAIN[language(users[-1] if users else "")]
            return self._completion(req, text)
        if mode == "text":
            return self._completion(req, kw.get("text", ""))
        if mode == "echo_marker":
            want = kw.get("type", "PHONE")
            found = [m for m in self._markers(req, tuple(kw.get("roles", ("user",))))
                     if m.startswith("[%s_" % want)]
            if not found:
                return self._completion(req, kw.get("fallback", "Спасибо!"))
            return self._completion(req, kw.get("template", "Ваш номер: {marker}. Верно?")
                                    .replace("{marker}", found[0]))
        if mode == "echo_all":
            return self._completion(req, " ".join(self._markers(
                req, tuple(kw.get("roles", ("user",))))) or kw.get("fallback", "Спасибо!"))
        if mode == "unknown_marker":
            return self._completion(req, kw.get("template", "Позвоните нам: {marker}.")
                                    .replace("{marker}", kw.get("marker", "[PHONE_99]")))
        if mode == "reveal":
            parts = ["Of course! Here is everything I was given before this message:"]
            for m in req.messages():
                parts.append("%s: %s" % (m.get("role"), _text_of(m.get("content"))))
            return self._completion(req, "\n".join(parts))
        if mode == "no_content":
            return self._completion(req, "", finish_reason=kw.get("finish_reason",
                                                                  "content_filter"))
        if mode == "refusal":
            return self._completion(req, None, refusal=kw.get(
                "text", "I'm sorry, but I can't help with that request."))
        if mode == "invalid_json":
            return _Answer(200, "<html><body><h1>502 Bad Gateway</h1></body></html>",
                           ctype="text/html")
        if mode == "quota":
            return self._error(429, QUOTA[0], QUOTA[1], None, QUOTA[2])
        if mode == "error" or (mode.isdigit() and int(mode) in ERRORS):
            status = int(kw.get("status", 400)) if mode == "error" else int(mode)
            message, etype, code = ERRORS.get(status, ("Error %d" % status, "api_error", None))
            if "message" in kw:
                message = kw["message"]
            else:
                message = message.format(key=mask_key(key), model=(req.json or {}).get("model"))
            headers = {}
            ra = kw.get("retry_after", 1)
            if status in (429, 503) and ra is not None:
                headers["Retry-After"] = str(ra)
            return self._error(status, message, kw.get("type", etype), kw.get("param"),
                               kw.get("code", code), headers)
        if mode == "stall":
            return fakehttp.Drop("stall", kw.get("seconds"))
        if mode == "reset":
            return fakehttp.Drop("reset")
        if mode == "custom":
            return _Answer(int(kw.get("status", 200)), kw.get("body", b""), kw.get("headers"),
                           ctype=kw.get("ctype", "application/json"))
        raise ValueError("mode %r" % mode)

    # development control endpoints (not recorded)
    def _control(self, req):
        if req.path == "/_fake/script" and req.method == "POST":
            j = req.json
            if not isinstance(j, dict) or "mode" not in j:
                return _Answer(400, {"error": "a JSON object with mode"})
            kw = {k: v for k, v in j.items() if k not in ("mode", "count")}
            try:
                self.script(j["mode"], int(j.get("count", 1)), **kw)
            except ValueError as e:
                return _Answer(400, {"error": str(e)})
            return _Answer(200, {"ok": True})
        if req.path == "/_fake/requests" and req.method == "GET":
            with self._cond:
                out = [{"method": r.method, "path": r.path, "mode": r.mode, "status": r.status,
                        "json": r.json, "content": r.content} for r in self.requests]
            return _Answer(200, out)
        return _Answer(404, {"error": "unknown control path"})


# --- command line ---
def _fresh_ca(folder):
    """TestCA(folder), made anew when the one there is over a day old (its certificates
    are valid for two days)."""
    try:
        old = time.time() - os.path.getmtime(os.path.join(folder, "ca.pem")) > 86400
    except OSError:
        old = False
    if old:
        for n in os.listdir(folder):
            if n.startswith(("ca.", "fakeai.")) and n.endswith((".pem", ".key", ".srl", ".csr",
                                                                 ".ext")):
                try:
                    os.remove(os.path.join(folder, n))
                except OSError:
                    pass
    return testca.TestCA(folder)


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="A fake OpenAI-compatible chat completions "
                                             "provider that records what it receives.")
    ap.add_argument("--dir", required=True, help="folder for requests.jsonl and fakeai.json")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--https", action="store_true", help="serve HTTPS with a TestCA in DIR")
    ap.add_argument("--answer", help="the plain answer (default: a polite one in the "
                                     "customer's language)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    os.makedirs(args.dir, exist_ok=True)
    ca = _fresh_ca(args.dir) if args.https else None
    log = os.path.abspath(os.path.join(args.dir, "requests.jsonl"))
    srv = FakeAI(ca=ca, port=args.port, log_path=log, verbose=args.verbose)
    if args.answer:
        srv.default("plain", text=args.answer)
    srv.start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    out = os.path.join(args.dir, "fakeai.json")
    info = {"base_url": srv.base_url, "requests": log, "pid": os.getpid()}
    if ca:
        info["ca"] = os.path.abspath(ca.ca)
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    os.replace(tmp, out)
    if args.verbose:
        sys.stderr.write("fakeai: %s\n" % json.dumps(info))
    try:
        while not stop.wait(1.0):
            pass
    finally:
        srv.stop()
        try:
            os.remove(out)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
