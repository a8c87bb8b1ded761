"""tests/integration/test_anon_eval.py - the anonymizer's measured quality (issues 6 and 16):
runs tests/anon/eval (the same as `make eval-anon`: one vault per corpus line, one per
conversation) with the ASan build's driver (tests/anon/run.c) and asserts its targets (corpus.jsonl: protected >= 0.995 for PHONE, EMAIL, IIN, BIN, CARD, IBAN, >= 0.95 for
NAME, precision >= 0.97; hard.jsonl: >= 0.995 for every structured type, >= 0.97 for NAME,
precision >= 0.95; the conversations >= 0.88); and checks that the corpora hold what they
claim (valid check digits, exact labels, generated from their templates, no sentence in
common).
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import hubd  # noqa: E402
from support import util  # noqa: E402
from support.case import HubTestCase  # noqa: E402

ANON = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "anon")
sys.path.insert(0, ANON)
import kznumbers  # noqa: E402


CORPORA = ("corpus.jsonl", "hard.jsonl")


def corpus(name="corpus.jsonl"):
    with open(os.path.join(ANON, name), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def all_lines():
    return [o for name in CORPORA for o in corpus(name)]


class Corpus(unittest.TestCase):
    def test_corpus_is_generated_from_the_templates(self):
        r = subprocess.run([sys.executable, os.path.join(ANON, "build_corpus.py"), "--check"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, "tests/anon/corpus.jsonl or hard.jsonl differs from "
                         "what tests/anon/build_corpus.py writes: " + r.stderr)

    def test_size_languages_and_clean_lines(self):
        for name in CORPORA:
            lines = corpus(name)
            self.assertGreaterEqual(len(lines), 400)
            langs = {}
            for o in lines:
                langs[o["lang"]] = langs.get(o["lang"], 0) + 1
            self.assertEqual(set(langs), {"ru", "kk", "en", "mixed"})
            clean = sum(1 for o in lines if not o["entities"])
            self.assertGreater(clean, len(lines) // 4)

    def test_hard_corpus_shares_no_sentence(self):
        def sentences(path):
            with open(os.path.join(ANON, path), encoding="utf-8") as f:
                return {line.split("|", 2)[2].strip() for line in f
                        if line.count("|") >= 2 and not line.startswith("#")}
        self.assertEqual(sentences("templates.txt") & sentences("hard_templates.txt"), set())
        self.assertEqual({o["text"] for o in corpus()} & {o["text"] for o in corpus("hard.jsonl")},
                         set())

    def test_labels_are_exact_and_checksums_hold(self):
        with open(os.path.join(ANON, "conversations.jsonl"), encoding="utf-8") as f:
            turns = [t for line in f if line.strip() for t in json.loads(line)["turns"]]
        for o in all_lines() + turns:
            for e in o["entities"]:
                self.assertIn(e["value"], o["text"])
                digits = "".join(c for c in e["value"] if c.isdigit())
                if e["type"] in ("IIN", "BIN"):
                    self.assertTrue(kznumbers.kz_valid(digits), e)
                elif e["type"] == "ID":
                    self.assertTrue(len(digits) == 12 and not kznumbers.kz_valid(digits), e)
                elif e["type"] == "CARD":
                    self.assertTrue(13 <= len(digits) <= 19 and kznumbers.luhn_ok(digits), e)
                elif e["type"] == "IBAN":
                    self.assertTrue(kznumbers.iban_ok(e["value"]), e)

    def test_twelve_digit_numbers_in_clean_lines_fail_the_check_digit(self):
        seen = 0
        for o in all_lines():
            if o["entities"]:
                continue
            for word in o["text"].replace("№", " ").split():
                if len(word) == 12 and word.isdigit():
                    seen += 1
                    self.assertFalse(kznumbers.kz_valid(word), o["text"])
        self.assertGreater(seen, 5)


class Eval(HubTestCase):
    needs_hubd = False
    needs_hubctl = True
    needs_pg = False

    def test_targets_hold(self):
        driver = os.path.join(util.build_dir(), "tests", "anon", "run")
        self.assertTrue(os.access(driver, os.X_OK), driver + " is not built (make asan)")
        r = subprocess.run([sys.executable, os.path.join(ANON, "eval"), "--run", driver,
                            "--verbose"], capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("targets: all met", r.stdout)
        self.assertEqual(hubd.sanitizer_report(r.stderr), None, r.stderr)

    def test_driver_starts_a_new_vault_when_asked(self):
        """A name learned after its cue is found bare later in the same vault, not in the
        next one; a refused known value is an error, not a silent pass."""
        driver = os.path.join(util.build_dir(), "tests", "anon", "run")
        text = "\x01\nменя зовут Зордан\nЗордан придёт\n\x01\nЗордан придёт\n"
        r = subprocess.run([driver], input=text.encode(), capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        outs = [json.loads(line) for line in r.stdout.decode().splitlines()]
        self.assertEqual(len(outs), 3)
        self.assertEqual([e["type"] for e in outs[1]["entities"]], ["NAME"])
        self.assertEqual(outs[2]["entities"], [])
        r = subprocess.run([driver], input="\x01p 12\nтекст\n".encode(), capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, b"")
        self.assertIn(b"refused", r.stderr)

if __name__ == "__main__":
    unittest.main()
