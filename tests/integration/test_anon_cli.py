"""tests/integration/test_anon_cli.py - `hubctl anonymize` (the ASan build when the harness
runs one): markers and byte offsets of --json, one vault for the whole run, known values,
marker-like input restored verbatim, and bad usage refused with exit 2 and no output.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import hubd  # noqa: E402
from support.case import HubTestCase  # noqa: E402


def anonymize(args, stdin):
    """(exit code, stdout text, stderr text); fails on a sanitizer report."""
    r = subprocess.run([hubd.hubctl_path(), "anonymize"] + args, input=stdin.encode("utf-8"),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                       env=hubd.child_env())
    err = r.stderr.decode("utf-8", "replace")
    rep = hubd.sanitizer_report(err)
    if rep:
        raise AssertionError("hubctl anonymize: sanitizer report:\n%s" % rep)
    return r.returncode, r.stdout.decode("utf-8"), err


class AnonymizeCli(HubTestCase):
    needs_hubd = False
    needs_hubctl = True
    needs_pg = False

    def test_json_offsets_and_one_vault(self):
        lines = ["Меня зовут Нурлан, +7 701 123 45 67", "перезвоните на 87011234567, Нурлану"]
        rc, out, err = anonymize(["--json"], "\n".join(lines) + "\n")
        self.assertEqual(rc, 0, err)
        objs = [json.loads(x) for x in out.splitlines()]
        self.assertEqual(len(objs), 2)
        self.assertEqual(objs[0]["text"], "Меня зовут [NAME_1], [PHONE_1]")
        self.assertEqual(objs[1]["text"], "перезвоните на [PHONE_1], [NAME_1]")
        for line, obj in zip(lines, objs):
            raw = line.encode("utf-8")
            for e in obj["entities"]:
                value = raw[e["start"]:e["end"]].decode("utf-8")
                self.assertIn(value, ("Нурлан", "Нурлану", "+7 701 123 45 67", "87011234567"))
                self.assertEqual(e["marker"], "[%s_1]" % e["type"])

    def test_known_values_in_any_form(self):
        rc, out, err = anonymize(["--known-name", "Жаксылык Ермеков", "--known-phone",
                                  "+77770001122", "--known-email", "zh.e@corp.kz"],
                                 "жаксылыку и ЕРМЕКОВУ: 8 777 000 11 22, ZH.E@CORP.KZ\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "[NAME_1] и [NAME_2]: [PHONE_1], [EMAIL_1]\n")

    def test_marker_like_input_is_vaulted(self):
        rc, out, err = anonymize([], "скопировал [PHONE_1] и NAME_2 из чата\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "скопировал [MARKER_1] и [MARKER_2] из чата\n")

    def test_bad_usage_is_exit_2_with_a_message_and_no_output(self):
        for args in (["--known-phone", "12345"], ["--known-email", "nope"],
                     ["--known-name", ""], ["--bogus"], ["extra"]):
            with self.subTest(args=args):
                rc, out, err = anonymize(args, "Нурлан +7 701 123 45 67\n")
                self.assertEqual(rc, 2)
                self.assertEqual(out, "")
                self.assertIn("anonymize", err)
