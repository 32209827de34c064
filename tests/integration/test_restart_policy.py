"""Which failures spend launch.max_restarts: a worker's config (3) or environment (4) error fails
the same way on every attempt, so it does not restart; any other failure does. Workers are shell
scripts under a real runner.

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
from proc_helpers import clean_env, read_text  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")


class RestartPolicyTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(RUNNER, "RUNNER_BIN is not set")
        self.tmp = tempfile.TemporaryDirectory(prefix="restart-policy-test-")
        self.root = os.path.join(self.tmp.name, "logs")

    def tearDown(self):
        self.tmp.cleanup()

    def run_job(self, code):
        script = f'if [ "$RANK" = 1 ]; then echo failing with {code}; exit {code}; fi; sleep 60'
        proc = subprocess.run([RUNNER, "--log-root", self.root, "--job-name", "r", "--nproc-per-node", "2",
                               "launch.max_restarts=2", "--", "sh", "-c", script],
                              capture_output=True, text=True, timeout=120, env=clean_env(), cwd=self.tmp.name)
        [job] = glob.glob(os.path.join(self.root, "r-*"))
        attempts = sorted(d for d in os.listdir(job) if d.startswith("attempt-"))
        return proc, json.loads(read_text(os.path.join(job, "outcome.json"))), attempts

    def test_a_config_error_from_a_worker_does_not_spend_restarts(self):
        for code, meaning in ((3, "config error"), (4, "environment error")):
            with self.subTest(code=code):
                proc, outcome, attempts = self.run_job(code)
                self.assertEqual(proc.returncode, 20, proc.stderr[-3000:])
                self.assertEqual(attempts, ["attempt-0"])
                self.assertEqual(outcome["status"], "failed")
                self.assertEqual(outcome["first_failure"]["exit_code"], code)
                skipped = (f"not restarting: rank 1 on {outcome['first_failure']['host']} exited with code {code} "
                           f"({meaning}), which a restart cannot change; 2 of launch.max_restarts=2 left unused")
                self.assertEqual(outcome["restart_skipped"], skipped)
                self.assertIn(skipped, proc.stderr)
                self.tearDown()
                self.setUp()

    def test_other_failures_still_restart(self):
        proc, outcome, attempts = self.run_job(1)
        self.assertEqual(proc.returncode, 20, proc.stderr[-3000:])
        self.assertEqual(attempts, ["attempt-0", "attempt-1", "attempt-2"])
        self.assertNotIn("restart_skipped", outcome)


if __name__ == "__main__":
    unittest.main()
