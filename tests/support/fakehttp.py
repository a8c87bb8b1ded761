"""tests/support/fakehttp.py - what the fakes of outside services share (fakeplat.py: the
messengers' APIs; fakeai.py: the AI provider): an HTTP/1.1 server with keep-alive over
TLS or plain TCP in threads, that reads each request (Content-Length or chunked), records
it through its fake and writes the fake's answer, or stalls or resets the connection.

A fake gives the server: Request (a class taking method, target, headers, body, t, conn),
Answer (status, body) for its own errors, _answer(req) -> an answer or a Drop, log_name,
verbose, socket_timeout, _ssl (an SSLContext or None), _tl (threading.local), _conn_seq,
_conns, _cond, _stop_event and tls_errors. Its handler class adds _write(ans, req).
Knows nothing about any platform.
"""
import http.server
import socket
import ssl
import struct
import sys
import time


class Drop:
    """Not an answer: stall (seconds or None: until the fake stops) or reset."""

    def __init__(self, how, seconds=None):
        self.how = how
        self.seconds = seconds


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sys_version = ""
    timeout = 120

    def log_message(self, fmt, *args):
        fake = self.server.fake
        if fake.verbose:
            sys.stderr.write("%s: %s\n" % (fake.log_name, fmt % args))

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("eof in chunked body")
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(n)
                self.rfile.readline(8)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _serve(self):
        fake = self.server.fake
        t = time.monotonic()
        body = self._read_body()
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = headers[k] + ", " + v if k in headers else v
        req = fake.Request(self.command, self.path, headers, body, t, fake._tl.conn)
        try:
            ans = fake._answer(req)
        except Exception as e:  # a bug in the fake: answer 500 rather than hang
            if fake.verbose:
                import traceback
                traceback.print_exc()
            ans = fake.Answer(500, {"fake_error": repr(e)})
        try:
            if isinstance(ans, Drop):
                self.close_connection = True
                if ans.how == "reset":
                    self._reset()
                else:
                    fake._stop_event.wait(ans.seconds)
                return
            self._write(ans, req)
        finally:
            req.done.set()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def _reset(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()  # drops the makefile reference, so close() is the real one
        except OSError:
            pass
        socket.socket.close(self.connection)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def finish_request(self, request, client_address):
        fake = self.fake
        fake._tl.conn = next(fake._conn_seq)
        try:
            request.settimeout(fake.socket_timeout)
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = fake._ssl.wrap_socket(request, server_side=True) if fake._ssl else request
        except (OSError, ssl.SSLError) as e:
            with fake._cond:
                fake.tls_errors.append(repr(e))
            try:
                request.close()
            except OSError:
                pass
            return
        with fake._cond:
            fake._conns.add(sock)
        try:
            self.RequestHandlerClass(sock, client_address, self)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            with fake._cond:
                fake._conns.discard(sock)
            if fake._ssl:
                try:
                    sock.settimeout(0.2)
                    sock.unwrap()
                except (OSError, ValueError, ssl.SSLError):
                    pass
            try:
                socket.socket.close(sock)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        if self.fake.verbose:
            super().handle_error(request, client_address)
