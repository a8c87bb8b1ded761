"""tests/integration/test_limits.py - connection limits that hold together (security issue
10, finding 8): upgraded websockets count toward http.max_connections until they close;
http.max_per_address caps one host's connections, HTTP and websockets, with a 429 JSON
answer before any upgrade (other hosts still served); hubd fits http.max_connections into
RLIMIT_NOFILE (raising its soft limit, else lowering the cap with a warning); and the
defaults fit the systemd unit's LimitNOFILE.
"""
import json
import os
import re
import socket
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import hubd, util, ws  # noqa: E402
from support.case import HubTestCase  # noqa: E402


def get_from(port, source, path="/healthz", timeout=10):
    """GET path from source address; (status, body) or (None, b"") when the server closed
    without an answer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                   % path).encode())
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    if not data:
        return None, b""
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


class Limits(HubTestCase):
    def wait_answer(self, h, status, source="127.0.0.1"):
        util.wait_for(lambda: get_from(h.port, source)[0] == status, 10,
                      "GET /healthz from %s to answer %r" % (source, status))

    def test_websockets_count_toward_max_connections(self):
        h = self.start_hubd(overrides={"http.max_connections": 3,
                                       "http.max_per_address": 0})
        socks = [self.agent(h, sub="agent-%d" % i) for i in range(3)]
        # three websockets hold every slot: a fourth connection is closed unanswered
        self.assertEqual(get_from(h.port, "127.0.0.1"), (None, b""))
        with self.assertRaises((ws.WsHandshakeError, ConnectionError)):
            ws.WsClient(h.port)
        socks.pop().close_socket()
        self.wait_answer(h, 200)
        for c in socks:   # and the others were never disturbed
            self.assertEqual(c.command({"type": "typing", "conversation_id": 1})["type"],
                             "error")
        h.assert_alive()

    def test_per_address_cap_answers_429_before_the_upgrade(self):
        h = self.start_hubd(overrides={"http.max_per_address": 3})
        socks = [self.agent(h, sub="agent-%d" % i) for i in range(3)]
        with self.assertRaises(ws.WsHandshakeError) as e:
            ws.WsClient(h.port)
        self.assertEqual(e.exception.status, 429)
        self.assertIn("Connection: close", e.exception.head)
        status, body = get_from(h.port, "127.0.0.1")
        self.assertEqual(status, 429)
        self.assertEqual(json.loads(body)["error"]["code"], "too_many_connections")
        # another host is served
        self.assertEqual(get_from(h.port, "127.0.0.2")[0], 200)
        # the sockets that fit are untouched; one closed makes room again
        for c in socks:
            self.assertEqual(c.command({"type": "typing", "conversation_id": 1})["type"],
                             "error")
        socks.pop().close_socket()
        self.wait_answer(h, 200)
        self.agent(h, sub="agent-9")
        self.assertIn('hub_http_refused_connections_total{reason="max_per_address"}',
                      get_from(h.port, "127.0.0.2", "/metrics")[1].decode())
        self.assertEqual(get_from(h.port, "127.0.0.2")[0], 200)  # alive (127.0.0.1 is full)

    def test_max_connections_is_fitted_into_the_descriptor_limit(self):
        # a hard RLIMIT_NOFILE of 300: 1000 connections cannot be served
        wrapper = os.path.join(self.out, "hubd-nofile-300")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nulimit -n 300 || exit 99\nexec %s \"$@\"\n" % hubd.hubd_path())
        os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
        h = self.start_hubd(overrides={"http.max_connections": 1000}, binary=wrapper)
        m = util.wait_for(lambda: re.search(
            r"http\.max_connections 1000 needs (\d+) file descriptors .* RLIMIT_NOFILE "
            r"allows 300: serving at most (\d+) connections; raise LimitNOFILE", h.log()),
            10, "the warning about RLIMIT_NOFILE")
        self.assertLess(int(m.group(2)), 300)
        self.assertEqual(get_from(h.port, "127.0.0.1")[0], 200)
        # a limit that can be raised is raised: no warning, the soft limit follows
        h2 = self.start_hubd(self.config({"http.max_connections": 2000}), name="hubd2")
        with open("/proc/%d/limits" % h2.proc.pid) as f:
            soft = int(next(line for line in f if line.startswith("Max open files"))
                       .split()[3])
        self.assertGreater(soft, 2000)
        self.assertNotRegex(h2.log(), r"RLIMIT_NOFILE")

    def test_the_template_unit_is_the_unit_with_an_instance(self):
        # systemd/hubd@.service (one process per core) must not drift from hubd.service
        def body(name):
            with open(os.path.join(util.ROOT, "systemd", name)) as f:
                text = f.read()
            lines = [x for x in text[text.index("[Unit]"):].splitlines()
                     if not x.startswith(("Description=", "DefaultInstance="))]
            return lines
        self.assertEqual(body("hubd@.service"), body("hubd.service"))

    def test_defaults_fit_the_systemd_unit(self):
        with open(os.path.join(util.ROOT, "systemd", "hubd.service")) as f:
            nofile = int(re.search(r"^LimitNOFILE=(\d+)$", f.read(), re.M).group(1))
        with open(os.path.join(util.ROOT, "config", "hubd.example.json")) as f:
            example = json.load(f)
        conns = example["http"]["max_connections"]
        # websockets are among the connections, and hubd needs its own descriptors
        self.assertLessEqual(example["ws"]["max_sockets"], conns)
        self.assertLessEqual(conns + 1024, nofile)
        self.assertGreater(example["http"]["max_per_address"], 0)
