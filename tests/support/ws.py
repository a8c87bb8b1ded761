"""tests/support/ws.py - a small RFC 6455 websocket client for tests: handshake with a
subprotocol, masked client frames, fragmented messages, ping/pong, close codes and reasons.

Knows nothing about the bayge.v1 messages beyond JSON helpers.
"""
import base64
import hashlib
import json
import os
import select
import socket
import struct
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class WsClosed(Exception):
    """The server closed: code (None when no close frame came) and reason."""

    def __init__(self, code, reason):
        super().__init__("websocket closed: code=%r reason=%r" % (code, reason))
        self.code = code
        self.reason = reason


class WsHandshakeError(Exception):
    def __init__(self, status, head):
        super().__init__("websocket handshake refused: %s" % head[:300])
        self.status = status
        self.head = head


class WsClient:
    """One client connection. Every read has a deadline (TimeoutError)."""

    def __init__(self, port, path="/ws", subprotocol="bayge.v1", host="127.0.0.1",
                 timeout=10.0, headers=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.closed = None          # (code, reason) once the server closed
        self.pings = []             # payloads of pings received (answered automatically)
        self.backlog = []           # messages command() read past, for next()
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n" % (path, host, port, key))
        if subprotocol:
            req += "Sec-WebSocket-Protocol: %s\r\n" % subprotocol
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        self.sock.sendall((req + "\r\n").encode("latin-1"))
        end = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(end):
                raise WsHandshakeError(None, self.buf.decode("latin-1"))
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        head = head.decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split(" ")[1])
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if status != 101:
            raise WsHandshakeError(status, head)
        want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if self.headers.get("sec-websocket-accept") != want:
            raise WsHandshakeError(status, "bad Sec-WebSocket-Accept: " + head)
        if subprotocol and self.headers.get("sec-websocket-protocol") != subprotocol:
            raise WsHandshakeError(status, "subprotocol not echoed: " + head)

    def close_socket(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close_socket()

    # --- sending ---
    @staticmethod
    def frame(opcode, payload, fin=True, mask=True):
        """The bytes of one frame (masked, as a client sends it, unless mask=False)."""
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            head += bytes([mbit | n])
        elif n < 65536:
            head += bytes([mbit | 126]) + struct.pack("!H", n)
        else:
            head += bytes([mbit | 127]) + struct.pack("!Q", n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        return head + payload

    def send_frame(self, opcode, payload, fin=True, mask=True):
        self.sock.sendall(self.frame(opcode, payload, fin, mask))

    def send_json_together(self, *objs):
        """Several text frames in one write: the server reads them in one go, with no turn of
        its loop between them (for tests of what a command finds still running)."""
        self.sock.sendall(b"".join(self.frame(OP_TEXT, json.dumps(o).encode("utf-8"))
                                   for o in objs))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode("utf-8"))

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def ping(self, payload=b"hubt"):
        self.send_frame(OP_PING, payload)

    def close(self, code=1000, reason=""):
        """Sends a close frame (the server's answer is read by wait_close)."""
        self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8"))

    # --- receiving ---
    def _fill(self, end):
        r, _, _ = select.select([self.sock], [], [], max(0.0, end - time.monotonic()))
        if not r:
            raise TimeoutError("no data from websocket server")
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            return False
        self.buf += data
        return True

    def _read_n(self, n, end):
        while len(self.buf) < n:
            if not self._fill(end):
                self.closed = self.closed or (None, "")
                raise WsClosed(*self.closed)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_frame(self, timeout=None):
        """One raw frame: (fin, opcode, payload). Server frames must not be masked."""
        end = time.monotonic() + (timeout if timeout is not None else self.timeout)
        b0, b1 = self._read_n(2, end)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_n(2, end))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_n(8, end))[0]
        if b1 & 0x80:
            raise AssertionError("server frame is masked (RFC 6455 5.1 forbids it)")
        return bool(b0 & 0x80), b0 & 0x0F, self._read_n(n, end)

    def recv(self, timeout=None):
        """The next message as (opcode, payload), reassembling fragments and answering
        pings. Raises WsClosed when the server closes (after answering its close)."""
        if self.closed:
            raise WsClosed(*self.closed)
        end = time.monotonic() + (timeout if timeout is not None else self.timeout)
        msg_op, parts = None, []
        while True:
            fin, op, payload = self.read_frame(max(0.0, end - time.monotonic()))
            if op == OP_PING:
                self.pings.append(payload)
                self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                reason = payload[2:].decode("utf-8", "replace")
                self.closed = (code, reason)
                try:
                    self.send_frame(OP_CLOSE, payload[:2])
                except OSError:
                    pass
                raise WsClosed(code, reason)
            if op != OP_CONT:
                msg_op = op
            parts.append(payload)
            if fin:
                return msg_op, b"".join(parts)

    def recv_json(self, timeout=None):
        op, payload = self.recv(timeout)
        if op != OP_TEXT:
            raise AssertionError("expected a text frame, got opcode %d" % op)
        return json.loads(payload)

    def wait_close(self, timeout=None):
        """Reads until the server closes; returns (code, reason); code None when the TCP
        connection ended without a close frame. Messages read meanwhile are returned in
        self.skipped. Raises TimeoutError if still open after timeout."""
        end = time.monotonic() + (timeout if timeout is not None else self.timeout)
        self.skipped = []
        while True:
            try:
                self.skipped.append(self.recv(max(0.0, end - time.monotonic())))
            except WsClosed as e:
                return e.code, e.reason

    def auth(self, token, timeout=None):
        """Sends {"type":"auth"} and returns the server's first message (hello)."""
        self.send_json({"type": "auth", "token": token})
        return self.recv_json(timeout)

    # --- bayge.v1 messages ---
    def next(self, timeout=None):
        """The next JSON message: what command() set aside first, then the socket."""
        if self.backlog:
            return self.backlog.pop(0)
        return self.recv_json(timeout)

    def command(self, obj, timeout=None):
        """Sends obj (a command; a ref is added unless it has one) and returns its answer
        (ack or error with that ref); other messages read meanwhile are kept for next()."""
        if "ref" not in obj:
            self.refs = getattr(self, "refs", 0) + 1
            obj = dict(obj, ref="r%d" % self.refs)
        self.send_json(obj)
        return self.answer(obj["ref"], timeout)

    def answer(self, ref, timeout=None):
        """Reads until the ack or error carrying ref; keeps the rest for next()."""
        end = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            m = self.recv_json(max(0.0, end - time.monotonic()))
            if m.get("type") in ("ack", "error") and m.get("ref") == ref:
                return m
            self.backlog.append(m)

    def event(self, name=None, timeout=None):
        """The next event (of that name when given; others before it are dropped)."""
        end = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            m = self.next(max(0.0, end - time.monotonic()))
            if m.get("type") == "event" and (name is None or m.get("event") == name):
                return m
