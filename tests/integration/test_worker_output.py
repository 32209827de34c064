"""What workers print cannot break the job's files or the agent's console: invalid UTF-8 (surrogates,
overlong forms, random bytes), C0/C1 controls and terminal escapes, a megabyte on one line.
Workers are shell scripts under a real runner.

Environment: RUNNER_BIN.
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proc_helpers import clean_env  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")

# Random bytes first (their newlines are random too), then the known hostile line, so that it is
# always among the last lines outcome.json keeps.
HOSTILE = ("head -c 3000 /dev/urandom; echo; "
           "printf 'surrogate \\355\\240\\200 overlong \\300\\257 c1 \\302\\233 esc \\033[2J\\033]0;title\\007\\n'; ")


class WorkerOutputTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(RUNNER, "RUNNER_BIN is not set")
        self.tmp = tempfile.TemporaryDirectory(prefix="worker-output-test-")
        self.root = os.path.join(self.tmp.name, "logs")

    def tearDown(self):
        self.tmp.cleanup()

    def run_job(self, script):
        proc = subprocess.run([RUNNER, "--log-root", self.root, "--job-name", "out", "--nproc-per-node", "1",
                               "--", "sh", "-c", script], capture_output=True, timeout=60,
                              env=clean_env(), cwd=self.tmp.name)
        [job] = glob.glob(os.path.join(self.root, "out-*"))
        return proc, job

    def strict_json_files(self, job):
        """Every JSON file of the job, decoded strictly (UTF-8, then JSON); returns outcome.json."""
        found = {}
        for path in glob.glob(os.path.join(job, "**", "*.json*"), recursive=True):
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")  # strict: raises on any invalid byte
            for line in (text.splitlines() if path.endswith(".jsonl") else [text]):
                json.loads(line)
            found[os.path.relpath(path, job)] = text
        self.assertIn("outcome.json", found)
        return json.loads(found["outcome.json"])

    def test_invalid_utf8_and_escapes_give_valid_json_and_a_clean_console(self):
        proc, job = self.run_job(HOSTILE + "exit 1")
        self.assertEqual(proc.returncode, 20, proc.stderr[-3000:])
        lines = self.strict_json_files(job)["first_failure"]["last_lines"]
        self.assertIn("surrogate \ufffd\ufffd\ufffd overlong \ufffd\ufffd c1 \x9b esc \x1b[2J\x1b]0;title\x07", lines)
        # The agent logged those lines as the root cause's, and mirrored rank 0's output, escaped:
        # no raw ESC, BEL or CSI anywhere on the console.
        console = proc.stderr
        self.assertIn(b"surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd overlong", console)
        self.assertIn(b"c1 \\u009b esc \\x1b[2J\\x1b]0;title\\x07", console)
        self.assertIn(b"rank 0 | ", console)
        for line in console.splitlines():
            for raw in (b"\x1b", b"\x07", b"\xc2\x9b", b"\xed\xa0\x80", b"\xc0\xaf"):
                self.assertNotIn(raw, line)

    def test_a_megabyte_line_is_cut_in_the_outcome(self):
        proc, job = self.run_job("head -c 1048576 /dev/zero | tr '\\0' x; echo; exit 1")
        self.assertEqual(proc.returncode, 20, proc.stderr[-3000:])
        self.assertLess(os.path.getsize(os.path.join(job, "outcome.json")), 64 * 1024)
        lines = self.strict_json_files(job)["first_failure"]["last_lines"]
        # The rank log keeps the whole line (in pieces of 64 to 128 KiB); the outcome quotes at
        # most 2048 bytes of each piece and says where the rest is.
        pieces = [line for line in lines if line.startswith("xxxx")]
        self.assertGreater(len(pieces), 0)
        for piece in pieces:
            self.assertRegex(piece, r"^x{2048} \[line cut: \d+ bytes in all, in full in \S+/rank-0\.log\]$",
                             piece[-200:])

if __name__ == "__main__":
    unittest.main()
