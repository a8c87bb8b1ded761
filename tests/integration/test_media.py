"""tests/integration/test_media.py - media (issue 12, point 6) against the real hubd, PostgreSQL
and the fake platforms: an inbound image from each platform is streamed to the agent with
the exact bytes and type (fetched with the channel's credentials, which never reach the
browser or the log), only for the message's tenant (404 otherwise, 401 without a token),
through a signed expiring link too; the platform failing or stalling (502, 504), a file
over media.max_bytes (a clear error, nothing stored); a big file streamed while the
browser reads slowly without hubd's memory growing by its size; uploads (wrong type, too
big, empty, lying about their type: refused, nothing stored) and an upload sent to each
platform by its signed URL, with its statuses.
"""
import hashlib
import json
import os
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import httpc, util, whatsapp  # noqa: E402
from test_outbound import IG_ACCOUNT, OutboundCase, compact  # noqa: E402

JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + os.urandom(3000) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(2048)
PDF = b"%PDF-1.7\n" + os.urandom(4000) + b"\n%%EOF\n"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class MediaCase(OutboundCase):
    def setUp(self):
        super().setUp()
        self.port = util.free_port()

    def config(self, overrides=None, **kw):
        kw.setdefault("port", self.port)
        o = {"media.public_url": "http://127.0.0.1:%d" % self.port}
        o.update(overrides or {})
        return super().config(o, **kw)

    def bearer(self, h, tenant="demo"):
        return {"Authorization": "Bearer " + self.token(h, tenant=tenant)}

    def get_media(self, h, mid, tenant="demo", headers=None):
        hdr = self.bearer(h, tenant) if headers is None else headers
        return httpc.request(h.port, "GET", "/api/v1/messages/%d/media" % mid, headers=hdr,
                             timeout=60)

    # --- inbound attachments, one per platform ---
    def wa_image(self, h, agent, media_id, mime="image/jpeg"):
        ch = self.channel(h, "demo-whatsapp")
        body, _ = whatsapp.text_body(ch["account_id"], "x")
        doc = json.loads(body)
        msg = doc["entry"][0]["changes"][0]["value"]["messages"][0]
        del msg["text"]
        msg["type"] = "image"
        msg["image"] = {"id": media_id, "mime_type": mime, "sha256": "x", "caption": "фото"}
        body = compact(doc)
        self.assertEqual(self.post_webhook(h, "demo-whatsapp", body,
                                           whatsapp.sign(body, ch["app_secret"])).status, 200)
        return agent.event("message.created")["data"]

    def tg_photo(self, h, agent, file_id, size):
        self.post(h, "telegram", compact({"update_id": int.from_bytes(os.urandom(3), "big"),
            "message": {"message_id": int.from_bytes(os.urandom(3), "big"),
                        "date": int(time.time()),
                        "from": {"id": 5127345680, "is_bot": False, "first_name": "Айгерим"},
                        "chat": {"id": 5127345680, "type": "private"},
                        "photo": [{"file_id": file_id + "-small", "file_unique_id": "s",
                                   "width": 90, "height": 90, "file_size": 100},
                                  {"file_id": file_id, "file_unique_id": "b", "width": 800,
                                   "height": 600, "file_size": size}]}}))
        return agent.event("message.created")["data"]

    def ig_image(self, h, agent, url):
        now = int(time.time() * 1000)
        self.post(h, "instagram", compact({"object": "instagram", "entry": [{
            "time": now, "id": IG_ACCOUNT, "messaging": [{
                "sender": {"id": "1254459154682919"}, "recipient": {"id": IG_ACCOUNT},
                "timestamp": now, "message": {"mid": "aWdfZ" + os.urandom(8).hex(),
                                              "attachments": [{"type": "image",
                                                               "payload": {"url": url}}]}}]}]}))
        return agent.event("message.created")["data"]


class Inbound(MediaCase):
    def test_an_image_from_each_platform_streams_its_exact_bytes(self):
        h = self.start(callbacks=False)
        agent = self.agent(h)
        wa, tg, ig = self.fakes["whatsapp"], self.fakes["telegram"], self.fakes["instagram"]
        wa.add_media("1003383421387256", JPEG, "image/jpeg")
        tg.add_media("AgACAgIAAxkBAAIB", PNG, "image/png", file_path="photos/file_7.png")
        ig.add_media("ig-asset-1", JPEG[::-1], "image/jpeg")
        msgs = {
            "whatsapp": (self.wa_image(h, agent, "1003383421387256"), JPEG, "image/jpeg"),
            "telegram": (self.tg_photo(h, agent, "AgACAgIAAxkBAAIB", len(PNG)), PNG,
                         "image/png"),
            "instagram": (self.ig_image(h, agent, ig.media_url("ig-asset-1")), JPEG[::-1],
                          "image/jpeg"),
        }
        for kind, (m, data, ctype) in msgs.items():
            self.assertEqual(m["type"], "image", kind)
            self.assertEqual(m["media"]["kind"], "image", kind)
            self.assertNotIn("ref", m["media"])  # the platform's reference stays in the hub
            self.assertNotIn("fbsbx", json.dumps(m))
            r = self.get_media(h, m["id"])
            self.assertEqual(r.status, 200, (kind, r))
            self.assertEqual(r.body, data, kind)
            self.assertEqual(r.headers["content-type"], ctype, kind)
            self.assertEqual(r.headers["x-content-type-options"], "nosniff")
            self.assertTrue(r.headers["content-disposition"].startswith("inline;"), r.headers)
        self.assertEqual(msgs["telegram"][0]["media"]["size"], len(PNG))
        self.assertEqual(msgs["whatsapp"][0]["media"]["mime"], "image/jpeg")
        # the channel's credentials went to the platform, and nowhere else
        wa_ch, tg_ch = self.channel(h, "demo-whatsapp"), self.channel(h, "demo-telegram")
        info = [r for r in wa.requests if r.op == "media_info"][0]
        got = [r for r in wa.requests if r.op == "media"][0]
        self.assertEqual(info.path, "/v21.0/1003383421387256")
        for r in (info, got):
            self.assertEqual(r.headers["authorization"], "Bearer " + wa_ch["access_token"])
        self.assertEqual([r.query.get("file_id") for r in tg.requests if r.op == "getFile"],
                         ["AgACAgIAAxkBAAIB"])
        self.assertEqual([r.path for r in tg.requests if r.op == "file"],
                         ["/file/bot%s/photos/file_7.png" % tg_ch["access_token"]])
        self.no_leak(tg_ch["access_token"].split(":")[1], "1003383421387256", "ig-asset-1")

        # another tenant's agent: 404 as for a message that does not exist; no token: 401
        mid = msgs["whatsapp"][0]["id"]
        r = self.get_media(h, mid, tenant="other")
        self.assertEqual((r.status, r.json()["error"]["code"]), (404, "no_media"))
        self.assertEqual(self.get_media(h, 10 ** 12).status, 404)
        r = self.get_media(h, mid, headers={})
        self.assertEqual((r.status, r.json()["error"]["code"]), (401, "missing_token"))
        # a text message has no file
        body, _, sig = self.text_webhook(h)
        self.post_webhook(h, "demo-whatsapp", body, sig)
        text_id = agent.event("message.created")["data"]["id"]
        self.assertEqual(self.get_media(h, text_id).status, 404)

        # the page's way: a short-lived signed link, for the tenant's messages only
        r = httpc.request(h.port, "POST", "/api/v1/messages/%d/media/link" % mid,
                          headers=self.bearer(h))
        self.assertEqual(r.status, 200, r)
        link = r.json()["url"]
        self.assertTrue(link.startswith("/api/v1/messages/%d/media?exp=" % mid), link)
        self.assertGreater(r.json()["expires_at"], time.time())
        r = httpc.get(h.port, link)
        self.assertEqual((r.status, r.body), (200, JPEG))
        self.assertEqual(httpc.get(h.port, link[:-2] + ("00" if link[-2:] != "00" else "11"))
                         .status, 403)
        other = link.replace("/messages/%d/" % mid, "/messages/%d/" % msgs["telegram"][0]["id"])
        self.assertEqual(httpc.get(h.port, other).status, 403)
        r = httpc.request(h.port, "POST", "/api/v1/messages/%d/media/link" % mid,
                          headers=self.bearer(h, tenant="other"))
        self.assertEqual(r.status, 404)

    def test_the_platform_failing_or_stalling_is_a_clear_502_or_504(self):
        h = self.start(callbacks=False, overrides={"media.timeout_ms": 1500})
        agent = self.agent(h)
        wa = self.fakes["whatsapp"]
        m = self.wa_image(h, agent, "unknown-to-the-fake")
        r = self.get_media(h, m["id"])
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.json()["error"]["code"], "platform_error")
        self.assertIn("WhatsApp answered 400", r.json()["error"]["message"])
        wa.add_media("m-500", JPEG, "image/jpeg")
        m = self.wa_image(h, agent, "m-500")
        wa.fail_next("500", on="media")
        r = self.get_media(h, m["id"])
        self.assertEqual((r.status, r.json()["error"]["code"]), (502, "platform_error"))
        wa.fail_next("stall", on="media", seconds=5)
        r = self.get_media(h, m["id"])
        self.assertEqual((r.status, r.json()["error"]["code"]), (504, "platform_timeout"))
        # and it still serves
        self.assertEqual(self.get_media(h, m["id"]).body, JPEG)
        self.no_leak(self.channel(h)["access_token"])

    def test_a_file_over_max_bytes_is_refused_clearly(self):
        h = self.start(callbacks=False, overrides={"media.max_bytes": 2048})
        agent = self.agent(h)
        self.fakes["whatsapp"].add_media("big-1", JPEG, "image/jpeg")
        m = self.wa_image(h, agent, "big-1")
        r = self.get_media(h, m["id"])
        self.assertEqual((r.status, r.json()["error"]["code"]), (502, "too_large"), r)
        self.assertIn("media.max_bytes", r.json()["error"]["message"])
        # Telegram says the size in the webhook: refused before anything is fetched
        m = self.tg_photo(h, agent, "AgAC-big", 10 ** 6)
        r = self.get_media(h, m["id"])
        self.assertEqual((r.status, r.json()["error"]["code"]), (502, "too_large"))
        self.assertEqual([r for r in self.fakes["telegram"].requests if r.op == "getFile"], [])
        # a chunked answer without a length is cut where it passes the limit
        self.fakes["instagram"].add_media("big-ig", JPEG, "image/jpeg")
        self.fakes["instagram"].fail_next("chunked", on="media")
        m = self.ig_image(h, agent, self.fakes["instagram"].media_url("big-ig"))
        with self.assertRaises(Exception):
            self.get_media(h, m["id"])
        self.assertEqual(self.count("media_uploads"), 0)
        self.assertEqual(httpc.get(h.port, "/healthz").status, 200)

    def test_a_big_file_streams_to_a_slow_reader_without_growing_hubd(self):
        size = 48 << 20
        # ASan keeps freed memory in quarantine: without it, RSS shows what hubd holds
        h = self.start(callbacks=False, overrides={"media.max_bytes": 64 << 20},
                       env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:"
                                            "quarantine_size_mb=0"})
        agent = self.agent(h)
        data = os.urandom(1 << 20) * 48
        self.fakes["telegram"].add_media("AgAC-huge", data, "application/pdf",
                                         file_path="documents/file_9.pdf")
        self.post(h, "telegram", compact({"update_id": 77, "message": {
            "message_id": 901, "date": int(time.time()),
            "from": {"id": 5127345680, "is_bot": False, "first_name": "Айгерим"},
            "chat": {"id": 5127345680, "type": "private"},
            "document": {"file_id": "AgAC-huge", "file_unique_id": "h",
                         "file_name": "каталог.pdf", "mime_type": "application/pdf"}}}))
        mid = agent.event("message.created")["data"]["id"]
        # warm up (TLS, pools), then measure
        self.assertEqual(self.get_media(h, mid).status, 200)
        base = rss_kib(h.proc.pid)
        s = socket.create_connection(("127.0.0.1", h.port), timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(("GET /api/v1/messages/%d/media HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
                   % (mid, self.token(h))).encode())
        got, peak, digest = 0, base, hashlib.sha256()
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        head, rest = head.split(b"\r\n\r\n", 1)
        self.assertIn(b"200 OK", head.split(b"\r\n")[0])
        self.assertIn(b"content-disposition: attachment;", head.lower())
        self.assertIn(b"filename*=UTF-8''%D0%BA", head)
        digest.update(rest)
        got = len(rest)
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            digest.update(chunk)
            got += len(chunk)
            if got < 8 << 20:
                time.sleep(0.002)  # a slow browser for the first 8 MiB
            peak = max(peak, rss_kib(h.proc.pid))
        s.close()
        self.assertEqual(got, size)
        self.assertEqual(digest.hexdigest(), hashlib.sha256(data).hexdigest())
        self.assertLess(peak - base, 16 << 10, "hubd grew by %d KiB" % (peak - base))


class Outbound(MediaCase):
    def upload(self, h, data, ctype, name=None, tenant="demo"):
        path = "/api/v1/media" + ("?filename=" + urllib.parse.quote(name) if name else "")
        hdr = self.bearer(h, tenant)
        if ctype:
            hdr["Content-Type"] = ctype
        return httpc.request(h.port, "POST", path, body=data, headers=hdr)

    def test_bad_uploads_are_refused_and_nothing_is_stored(self):
        h = self.start(callbacks=False, overrides={"media.upload_max": 8192})
        cases = [(b"<html><script>1</script>", "text/html", 415, "unsupported_type"),
                 (b"", "image/png", 400, "empty_file"),
                 (PNG * 4, "image/png", 413, None),
                 (b"GIF89a" + os.urandom(50), "image/png", 400, "type_mismatch"),
                 (b"plain\x00text", "text/plain", 400, "type_mismatch")]
        for data, ctype, status, code in cases:
            r = self.upload(h, data, ctype, "a.png")
            self.assertEqual(r.status, status, (ctype, r))
            if code:
                self.assertEqual(r.json()["error"]["code"], code)
        r = httpc.request(h.port, "POST", "/api/v1/media", body=PNG,
                          headers={"Content-Type": "image/png"})
        self.assertEqual(r.status, 401)
        self.assertEqual(self.count("media_uploads"), 0)
        self.assertEqual(int(self.psql("SELECT count(*) FROM pg_largeobject_metadata")), 0)
        r = self.upload(h, PDF, "application/pdf", "../../etc/Счёт №1.pdf")
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json()["filename"], r.json()["size"]), ("Счёт №1.pdf", len(PDF)))
        self.assertEqual(r.json()["sha256"], hashlib.sha256(PDF).hexdigest())

    def send_media(self, agent, conv, upload_id, caption=None):
        cmd = {"type": "send", "conversation_id": conv, "media_id": upload_id,
               "client_id": os.urandom(6).hex()}
        if caption is not None:
            cmd["text"] = caption
        ack = agent.command(cmd)
        self.assertEqual(ack["type"], "ack", ack)
        created = agent.event("message.created")["data"]
        self.assertEqual(created["id"], ack["message_id"])
        return created

    def fetch_link(self, link):
        """The bytes behind a link the hub gave a platform (http://127.0.0.1:PORT/...)."""
        u = urllib.parse.urlsplit(link)
        self.assertEqual(u.port, self.port)
        return httpc.get(self.port, u.path + "?" + u.query)

    def test_an_upload_is_sent_to_each_platform_by_its_signed_url(self):
        h = self.start()
        agent = self.agent(h)
        photo = self.upload(h, JPEG, "image/jpeg", "фото.jpg").json()
        doc = self.upload(h, PDF, "application/pdf", "счёт.pdf").json()

        conv = self.wa_conversation(h, agent)
        m = self.send_media(agent, conv, photo["id"], "Ваш заказ")
        self.assertEqual((m["type"], m["media"]["kind"], m["media"]["filename"],
                          m["media"]["size"], m["text"]), ("image", "image", "фото.jpg",
                                                           len(JPEG), "Ваш заказ"))
        self.assertEqual(self.statuses(agent, m["id"], "read"), ["sent", "delivered", "read"])
        r = self.accepted("whatsapp")[-1].json
        self.assertEqual((r["type"], r["image"]["caption"]), ("image", "Ваш заказ"))
        got = self.fetch_link(r["image"]["link"])
        self.assertEqual((got.status, got.body, got.headers["content-type"]),
                         (200, JPEG, "image/jpeg"))
        # the agent's own file is shown from the hub too
        self.assertEqual(self.get_media(h, m["id"]).body, JPEG)
        m = self.send_media(agent, conv, doc["id"])
        self.assertEqual(self.statuses(agent, m["id"], "sent")[-1], "sent")
        r = self.accepted("whatsapp")[-1].json
        self.assertEqual((r["type"], r["document"]["filename"]), ("document", "счёт.pdf"))
        self.assertEqual(self.fetch_link(r["document"]["link"]).body, PDF)

        conv = self.tg_conversation(h, agent)
        m = self.send_media(agent, conv, photo["id"], "Сәлем")
        self.assertEqual(self.statuses(agent, m["id"], "sent")[-1], "sent")
        r = self.accepted("telegram", op="sendPhoto")[-1]
        self.assertEqual((r.json or r.form)["caption"], "Сәлем")
        link = (r.json or r.form)["photo"]
        self.assertIn("/%s?" % urllib.parse.quote("фото.jpg"), link)
        self.assertEqual(self.fetch_link(link).body, JPEG)
        m = self.send_media(agent, conv, doc["id"])
        self.assertEqual(self.statuses(agent, m["id"], "sent")[-1], "sent")
        r = self.accepted("telegram", op="sendDocument")[-1]
        self.assertEqual(self.fetch_link((r.json or r.form)["document"]).body, PDF)

        conv = self.ig_conversation(h, agent)
        r = agent.command({"type": "send", "conversation_id": conv, "media_id": photo["id"],
                           "text": "caption"})
        self.assertEqual((r["type"], r["code"]), ("error", "bad_request"))
        m = self.send_media(agent, conv, photo["id"])
        self.assertEqual(self.statuses(agent, m["id"], "read")[-1], "read")
        r = self.accepted("instagram")[-1].json
        att = r["message"]["attachment"]
        self.assertEqual(att["type"], "image")
        self.assertEqual(self.fetch_link(att["payload"]["url"]).body, JPEG)

        # a tampered or foreign link opens nothing; another tenant cannot send the upload
        link = urllib.parse.urlsplit(att["payload"]["url"])
        bad = link.path.replace("/media/%d/" % photo["id"], "/media/%d/" % doc["id"])
        self.assertEqual(httpc.get(self.port, bad + "?" + link.query).status, 403)
        self.assertEqual(httpc.get(self.port, link.path).status, 403)
        other = self.agent(h, tenant="other")
        r = other.command({"type": "send", "conversation_id": conv, "media_id": photo["id"]})
        self.assertEqual(r["type"], "error")
        r = agent.command({"type": "send", "conversation_id": conv, "media_id": 10 ** 12})
        self.assertEqual((r["type"], r["code"]), ("error", "not_found"))
