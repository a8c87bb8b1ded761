"""tests/integration/test_golden.py - golden files: for every tests/fixtures/PLATFORM/NAME.json
that has a NAME.expected.jsonl beside it, `hubctl parse PLATFORM NAME.json` must print exactly
that file, byte for byte. `make golden` regenerates the expected files (review the diff).
Fixtures without an expected file are not compared.
"""
import difflib
import glob
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import hubd, util  # noqa: E402
from support.case import HubTestCase  # noqa: E402


def golden_pairs():
    """[(platform, fixture path, expected path)] in a stable order."""
    pairs = []
    for expected in sorted(glob.glob(os.path.join(util.FIXTURES, "*", "*.expected.jsonl"))):
        body = expected[:-len(".expected.jsonl")] + ".json"
        if os.path.isfile(body):
            pairs.append((os.path.basename(os.path.dirname(body)), body, expected))
    return pairs


def parse(platform, path):
    """hubctl parse: (exit code, stdout bytes, stderr text); fails on a sanitizer report."""
    r = subprocess.run([hubd.hubctl_path(), "parse", platform, path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, env=hubd.child_env())
    err = r.stderr.decode("utf-8", "replace")
    rep = hubd.sanitizer_report(err)
    if rep:
        raise AssertionError("hubctl parse %s %s: sanitizer report:\n%s" % (platform, path, rep))
    return r.returncode, r.stdout, err


def diff(expected, got, name):
    lines = difflib.unified_diff(expected.decode("utf-8", "replace").splitlines(True),
                                 got.decode("utf-8", "replace").splitlines(True),
                                 name + " (expected)", name + " (hubctl parse)")
    text = "".join(lines)
    return text if len(text) < 20000 else text[:20000] + "\n[... diff cut ...]\n"


class Golden(HubTestCase):
    needs_hubd = False
    needs_hubctl = True
    needs_pg = False

    def test_every_fixture_parses_to_its_expected_file(self):
        pairs = golden_pairs()
        self.assertTrue(pairs, "no tests/fixtures/*/*.expected.jsonl found")
        for platform, body, expected in pairs:
            name = os.path.relpath(body, util.ROOT)
            with self.subTest(fixture=name):
                rc, out, err = parse(platform, body)
                self.assertEqual(rc, 0, "hubctl parse %s %s exited %d:\n%s"
                                 % (platform, name, rc, err))
                with open(expected, "rb") as f:
                    want = f.read()
                if out != want:
                    self.fail("hubctl parse %s %s differs from %s (make golden regenerates "
                              "it; review the diff):\n%s"
                              % (platform, name, os.path.basename(expected),
                                 diff(want, out, name)))

    def test_every_whatsapp_fixture_has_an_expected_file(self):
        missing = [os.path.basename(p)
                   for p in sorted(glob.glob(os.path.join(util.FIXTURES, "whatsapp", "*.json")))
                   if not os.path.isfile(p[:-len(".json")] + ".expected.jsonl")]
        self.assertEqual(missing, [], "fixtures without NAME.expected.jsonl (make golden)")

    def test_a_changed_output_is_reported_with_a_diff(self):
        # The comparison itself: a stale expected file must fail, naming the line.
        body = os.path.join(util.FIXTURES, "whatsapp", "text.json")
        rc, out, _ = parse("whatsapp", body)
        self.assertEqual(rc, 0)
        stale = out.replace(b"another color", b"another colour")
        self.assertNotEqual(stale, out)
        d = diff(stale, out, "text.json")
        self.assertIn("-", d)
        self.assertIn("another colour", d)
        self.assertIn("another color", d)
