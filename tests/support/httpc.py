"""tests/support/httpc.py - HTTP/1.1 clients for tests: request() over http.client, and
RawConn, a raw socket for what a polite client never does (slowloris, pipelining,
oversized bodies, half-sent requests).

Knows nothing about hubd's routes.
"""
import http.client
import json
import select
import socket
import time


class Resp:
    """One HTTP response. headers: lower-case names (the last value wins)."""

    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Resp %d %r %r>" % (self.status, self.headers.get("content-type"),
                                    self.body[:200])


def request(port, method, path, body=None, headers=None, timeout=15.0, host="127.0.0.1"):
    """One request on a new connection; returns a Resp (never raises on HTTP status)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, r.reason, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def get(port, path, **kw):
    return request(port, "GET", path, **kw)


class RawConn:
    """A raw TCP connection with a response parser. Every read has a deadline."""

    def __init__(self, port, host="127.0.0.1", timeout=15.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        """Sends all of data; returns False if the peer reset or closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self, timeout):
        """Reads more bytes into buf; False on EOF/reset; raises TimeoutError."""
        if self.eof:
            return False
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            raise TimeoutError("no data from server within %.1f s" % timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def peer_closed(self, timeout=0.0):
        """True once the server closed (EOF or reset) within timeout; data read meanwhile
        stays in buf. False if still open when timeout passes."""
        end = time.monotonic() + timeout
        while not self.eof:
            left = end - time.monotonic()
            try:
                self._fill(max(0.0, left))
            except TimeoutError:
                return False
        return True

    def _read_line(self, end):
        while b"\r\n" not in self.buf:
            if not self._fill(max(0.0, end - time.monotonic())):
                raise ConnectionError("connection closed mid-response: %r" % self.buf[:200])
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_n(self, n, end):
        while len(self.buf) < n:
            if not self._fill(max(0.0, end - time.monotonic())):
                raise ConnectionError("connection closed mid-body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, timeout=None, head=False):
        """Parses one response (Content-Length, chunked, or until close). head=True: the
        request was HEAD, no body. Raises ConnectionError if the server closed first."""
        end = time.monotonic() + (timeout or self.timeout)
        status_line = self._read_line(end).decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ConnectionError("bad status line %r" % status_line)
        headers = {}
        while True:
            line = self._read_line(end)
            if not line:
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        status = int(parts[1])
        if head or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size = int(self._read_line(end).split(b";")[0], 16)
                if size == 0:
                    while self._read_line(end):
                        pass
                    break
                body += self._read_n(size, end)
                self._read_line(end)
        elif "content-length" in headers:
            body = self._read_n(int(headers["content-length"]), end)
        else:
            while self._fill(max(0.0, end - time.monotonic())):
                pass
            body, self.buf = self.buf, b""
        return Resp(status, parts[2] if len(parts) > 2 else "", headers, body)


def format_request(method, path, body=b"", headers=None, host="127.0.0.1"):
    """Bytes of one HTTP/1.1 request with Host and (for a body) Content-Length."""
    h = {"Host": host}
    if body or method in ("POST", "PUT"):
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    return head.encode("latin-1") + body
