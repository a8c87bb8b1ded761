"""tests/integration/test_api_web.py - the inbox page's files as hubd serves them from the
binary: content types, ETag revalidation (304), no-cache, a strict Content-Security-Policy
and other security headers, HEAD, unknown files 404; and no inline script or handler in the
page (the CSP forbids them, so one would silently break the page).
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import httpc, util  # noqa: E402
from support.case import HubTestCase  # noqa: E402

WEB = os.path.join(util.ROOT, "web")
FILES = {"/inbox": ("index.html", "text/html; charset=utf-8"),
         "/inbox/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/inbox/app.css": ("app.css", "text/css; charset=utf-8"),
         "/inbox/favicon.svg": ("favicon.svg", "image/svg+xml")}


class Files(HubTestCase):
    def test_files_with_types_etags_and_security_headers(self):
        h = self.start_hubd()
        etags = set()
        for path, (name, ctype) in FILES.items():
            r = httpc.get(h.port, path)
            self.assertEqual(r.status, 200, (path, r))
            with open(os.path.join(WEB, name), "rb") as f:
                self.assertEqual(r.body, f.read(), path)   # the built-in copy is the file
            self.assertEqual(r.headers["content-type"], ctype)
            self.assertEqual(r.headers["cache-control"], "no-cache")
            self.assertEqual(r.headers["x-content-type-options"], "nosniff")
            self.assertEqual(r.headers["referrer-policy"], "no-referrer")
            csp = r.headers["content-security-policy"]
            self.assertIn("default-src 'none'", csp)
            self.assertIn("script-src 'self'", csp)
            self.assertIn("frame-ancestors 'none'", csp)
            self.assertIn("form-action 'none'", csp)
            self.assertNotIn("data:", csp)
            self.assertNotIn("unsafe", csp)
            etag = r.headers["etag"]
            self.assertRegex(etag, r'^"[0-9a-f]{16}"$')
            etags.add(etag)
            # revalidation: the same tag is 304 without a body, another one is 200
            for inm in (etag, "W/" + etag, '"0000000000000000", ' + etag, "*"):
                r304 = httpc.get(h.port, path, headers={"If-None-Match": inm})
                self.assertEqual((r304.status, r304.body), (304, b""), inm)
                self.assertEqual(r304.headers["etag"], etag)
            r200 = httpc.get(h.port, path, headers={"If-None-Match": '"0000000000000000"'})
            self.assertEqual(r200.status, 200)
            head = httpc.request(h.port, "HEAD", path)
            self.assertEqual((head.status, head.body), (200, b""))
            self.assertEqual(head.headers["etag"], etag)
        self.assertEqual(len(etags), len(FILES))
        self.assertEqual(httpc.get(h.port, "/inbox/").status, 200)

    def test_unknown_files_and_bad_paths(self):
        h = self.start_hubd()
        for path in ("/inbox/nope.js", "/inbox/index.htm", "/inbox/app.js/x",
                     "/inbox/%2e%2e/etc/passwd", "/inbox/..%2fREADME.md"):
            r = httpc.get(h.port, path)
            self.assertIn(r.status, (400, 404), (path, r))
            self.assertTrue(r.headers["content-type"].startswith("application/json"), r)
            self.assertNotIn(b"<html", r.body)
        r = httpc.request(h.port, "POST", "/inbox", body=b"x")
        self.assertEqual(r.status, 405)
        h.assert_alive()


class PageSource(HubTestCase):
    needs_hubd = False
    needs_pg = False

    def read(self, name):
        with open(os.path.join(WEB, name), encoding="utf-8") as f:
            return f.read()

    def test_no_inline_script_style_or_handlers(self):
        html = self.read("index.html")
        for tag in re.findall(r"<script\b[^>]*>", html):
            self.assertRegex(tag, r'\bsrc="/inbox/', tag)
        self.assertEqual(re.findall(r"<script\b[^>]*>(?!</script>)", html), [])
        self.assertNotRegex(html, r"<style\b")
        self.assertNotRegex(html, r"\son[a-z]+\s*=")
        self.assertNotRegex(html, r"\sstyle\s*=")
        self.assertNotRegex(html, r"(?:src|href)=\"(?:https?:)?//")   # nothing from elsewhere

    def test_message_text_never_goes_through_html(self):
        js = self.read("app.js")
        for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                    "eval(", "new Function"):
            self.assertNotIn(bad, js)
