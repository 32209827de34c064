"""The job directory `runner --dry-run` shows is the one the run creates, for hostile job names
from the scheduler (SLURM_JOB_NAME: path separators, '..', spaces, newlines, leading dots, bytes
that are not ASCII, more than a file name holds): one directory, directly under job.log_root.

The runner runs as Slurm's batch script would start it (SLURM_JOB_ID, one node). Environment:
RUNNER_BIN.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proc_helpers import clean_env  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")

HOSTILE_NAMES = ["../../x", "a/b/c", "/abs/path", "with space", "new\nline", ".hidden", "..", "...",
                 "-dash", "caf\u00e9 \u2603", "n" * 300, "tab\there"]


class JobNamesTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(RUNNER, "RUNNER_BIN is not set")
        self.tmp = tempfile.TemporaryDirectory(prefix="job-names-test-")
        self.addCleanup(self.tmp.cleanup)

    def env(self, name, job_id):
        env = clean_env()
        env.update({"SLURM_JOB_ID": str(job_id), "SLURM_JOB_NAME": name, "SLURM_JOB_NUM_NODES": "1",
                    "SLURM_JOB_NODELIST": socket.gethostname()})
        return env

    def test_the_dry_run_shows_the_directory_the_run_creates(self):
        for job_id, name in enumerate(HOSTILE_NAMES, start=1000):
            with self.subTest(name=name):
                root = os.path.join(self.tmp.name, "root%d" % job_id, "logs")
                os.makedirs(root)
                args = [RUNNER, "--log-root", root, "--nproc-per-node", "1",
                        "launch.store_addr=127.0.0.1"]
                dry = subprocess.run(args + ["--dry-run"], capture_output=True, text=True, timeout=60,
                                     env=self.env(name, job_id), cwd=self.tmp.name)
                self.assertEqual(dry.returncode, 0, dry.stderr)
                shown = re.search(r"^  job directory +(.*)   \(job\.log_root", dry.stdout, re.M)
                self.assertTrue(shown, dry.stdout)
                run = subprocess.run(args + ["--", "true"], capture_output=True, text=True, timeout=60,
                                     env=self.env(name, job_id), cwd=self.tmp.name)
                self.assertEqual(run.returncode, 0, run.stderr[-3000:])
                # Nothing outside the root; exactly one directory in it.
                self.assertEqual(sorted(os.listdir(os.path.dirname(root))), ["logs"])
                [created] = os.listdir(root)
                self.assertEqual(shown.group(1), os.path.join(root, created) + "/")
                self.assertFalse(created.startswith("."), created)
                self.assertLessEqual(len(created.encode()), 255)
                self.assertTrue(os.path.exists(os.path.join(root, created, "outcome.json")))


if __name__ == "__main__":
    unittest.main()
