"""tests/integration/test_layout.py - the tree's layering holds (scripts/check-layers): no
room includes a header of a room above it, the pure core includes no I/O library, and
llhttp.h never meets libwebsockets.h; and the check itself catches each kind of break.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import util  # noqa: E402

CHECK = os.path.join(util.ROOT, "scripts", "check-layers")


def check(root):
    return subprocess.run([CHECK, root], capture_output=True, text=True, timeout=60)


class Layers(unittest.TestCase):
    def test_the_tree_keeps_its_layers(self):
        r = check(util.ROOT)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")

    def test_each_kind_of_break_is_named_with_file_and_line(self):
        tmp = tempfile.mkdtemp(prefix="layers-")
        self.addCleanup(shutil.rmtree, tmp)
        for top in ("lib", "config", "adapters", "anonymizer", "assistant", "daemon"):
            if os.path.isdir(os.path.join(util.ROOT, top)):
                shutil.copytree(os.path.join(util.ROOT, top), os.path.join(tmp, top),
                                ignore=shutil.ignore_patterns("*.txt", "*.md"))
        breaks = {
            "daemon/net/up.c": ('#include "daemon/inbox/inbox.h"\n',
                                'daemon/net/up.c:1: daemon/net includes "daemon/inbox/inbox.h"'),
            "daemon/data/up.c": ('#include "daemon/net/http.h"\n',
                                 'daemon/data/up.c:1: daemon/data includes "daemon/net/http.h"'),
            "adapters/io.c": ("#include <stdio.h>\n#include <uv.h>\n",
                              "adapters/io.c:2: the pure core includes <uv.h>"),
            "lib/up.c": ('#include "config/config.h"\n',
                         'lib/up.c:1: lib includes "config/config.h"'),
            "daemon/inbox/both.c": ("#include <llhttp.h>\n#include <libwebsockets.h>\n",
                                    "daemon/inbox/both.c:2: llhttp.h and libwebsockets.h"),
            "daemon/nowhere/x.c": ("\n", "daemon/nowhere/x.c:1: in a sub-folder of daemon/"),
        }
        for rel, (text, _) in breaks.items():
            os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
            with open(os.path.join(tmp, rel), "w") as f:
                f.write(text)
        r = check(tmp)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for rel, (_, line) in breaks.items():
            self.assertIn(line, r.stdout)
        self.assertEqual(len(r.stdout.splitlines()), len(breaks), r.stdout)


if __name__ == "__main__":
    unittest.main()
