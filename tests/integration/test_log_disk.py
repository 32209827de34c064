"""A full disk under job.log_root: a worker floods its rank log onto a small tmpfs. The runner
must never stop or slow the worker for it, must say at once which file it cannot write, why and
what to do, count what was lost (outcome.json's log_write_errors, the closing line, a note in the
log where the gap is), and end a job whose workers all succeeded with exit code 1 ("succeeded,
but the logs are incomplete"), not 0. With room on the disk nothing is lost and the code is 0.

Needs root (mount -t tmpfs); skipped otherwise. Environment: RUNNER_BIN.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proc_helpers import DrainedProcess, clean_env, wait_for  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")
FLOOD_LINES = 50000  # about 5 MB: more than the small disk holds

# Rank 1 floods, says it is waiting, and waits for the test's go file (the scenario: the test
# frees space meanwhile) before a last line. Rank 0 is quiet, so the console is not flooded.
WORKER = r"""
import os, sys, time
go, flooded = sys.argv[1], sys.argv[2]
if os.environ["RANK"] != "1":
    print("rank 0 idle", flush=True)
    sys.exit(0)
pad = "x" * 90
for i in range(1, %d + 1):
    sys.stdout.write("line %%d %%s\n" %% (i, pad))
sys.stdout.write("waiting\n")
sys.stdout.flush()
open(flooded, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.05)
print("after", flush=True)
""" % FLOOD_LINES


class LogDiskTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(RUNNER, "RUNNER_BIN is not set")
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        self.tmp = tempfile.TemporaryDirectory(prefix="log-disk-test-")
        self.addCleanup(self.tmp.cleanup)
        self.worker = os.path.join(self.tmp.name, "worker.py")
        with open(self.worker, "w") as f:
            f.write(WORKER)
        self.go = os.path.join(self.tmp.name, "go")
        self.flooded = os.path.join(self.tmp.name, "flooded")

    def mount(self, size):
        root = os.path.join("/tmp", "runner-log-disk-" + uuid.uuid4().hex[:12])
        os.mkdir(root)
        self.addCleanup(os.rmdir, root)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", root], check=True)
        # Lazy: a runner that outlived a failed test must not keep the mount for ever.
        self.addCleanup(subprocess.run, ["umount", "-l", root], check=True)
        return root

    def start(self, root):
        return DrainedProcess([RUNNER, "--log-root", root, "--job-name", "t", "--nproc-per-node", "2",
                               "launch.store_addr=127.0.0.1", "--", sys.executable, self.worker,
                               self.go, self.flooded],
                              env=clean_env(), cwd=self.tmp.name)

    def rank_log_lines(self, job):
        with open(os.path.join(job, "attempt-0", "rank-1.log"), "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()

    def test_a_full_disk_is_said_counted_and_ends_the_job_with_1(self):
        root = self.mount("2m")
        ballast = os.path.join(root, "ballast")
        with open(ballast, "wb") as f:
            f.write(b"\0" * (1024 * 1024))
        runner = self.start(root)
        wait_for(lambda: os.path.exists(self.flooded), 60, "the worker to finish flooding")
        warning = re.compile(r"cannot write to (\S+/t-[^/]+)/attempt-0/rank-1\.log: No space left on device; "
                             r".*free space under job\.log_root, or point job\.log_root")
        match = wait_for(lambda: warning.search(runner.output_so_far()), 30,
                         lambda: "the warning on the console; it has:\n" + runner.output_so_far()[-3000:])
        job = match.group(1)
        os.unlink(ballast)  # room again: the rest of the job's files can be written
        open(self.go, "w").close()
        out, _ = runner.communicate(timeout=60)
        self.assertEqual(runner.returncode, 1, out[-3000:])
        self.assertEqual(len(warning.findall(out)), 1, "the warning is said once per file")
        self.assertRegex(out, r"job t-\S+ succeeded with exit code 1 \(succeeded, but the logs are incomplete"
                              r"[^\n]*logs incomplete, \d+ lines \([^)]*\) lost: rank-1\.log \(No space left on device\)")

        with open(os.path.join(job, "outcome.json")) as f:
            outcome = json.load(f)
        self.assertEqual((outcome["status"], outcome["exit_code"], outcome["logs_complete"]),
                         ("succeeded", 1, False))
        [rank_errors] = [e for e in outcome["log_write_errors"] if e["file"].endswith("/rank-1.log")]
        self.assertEqual((rank_errors["rank"], rank_errors["errno"], rank_errors["error"]),
                         (1, 28, "No space left on device"))
        self.assertGreater(rank_errors["bytes_lost"], 0)
        self.assertEqual(outcome["agents"][0]["log_write_errors"][0]["file"], rank_errors["file"])

        # Every line the worker printed is either in the log, whole and in order, or counted as
        # lost; each gap is marked where it is.
        lines = self.rank_log_lines(job)
        notes = [re.search(r"\[runner\] (\d+) lines \((\d+) bytes\) of this log were lost here"
                           r"(, the line above among them \(cut short\))?: cannot write: "
                           r"No space left on device$", l) for l in lines]
        self.assertTrue(any(notes))
        self.assertEqual(sum(int(m.group(1)) for m in notes if m), rank_errors["lines_lost"])
        cut = {i - 1 for i, m in enumerate(notes) if m and m.group(3)}
        whole = [l for i, l in enumerate(lines) if i not in cut]
        numbers = [int(m.group(1)) for m in (re.search(r" line (\d+) x{90}$", l) for l in whole) if m]
        self.assertEqual(numbers, sorted(numbers))
        self.assertEqual(len(numbers) + sum(1 for l in whole if l.endswith((" waiting", " after"))) +
                         rank_errors["lines_lost"], FLOOD_LINES + 2)
        self.assertTrue(lines[-2].endswith(" after"), lines[-3:])

    def test_with_room_on_the_disk_nothing_is_lost(self):
        root = self.mount("64m")
        open(self.go, "w").close()
        runner = self.start(root)
        out, _ = runner.communicate(timeout=60)
        self.assertEqual(runner.returncode, 0, out[-3000:])
        self.assertNotIn("cannot write", out)
        [job] = glob.glob(os.path.join(root, "t-*"))
        with open(os.path.join(job, "outcome.json")) as f:
            outcome = json.load(f)
        self.assertEqual((outcome["exit_code"], outcome["logs_complete"], outcome["log_write_errors"]),
                         (0, True, []))
        lines = self.rank_log_lines(job)
        numbers = [int(m.group(1)) for m in (re.search(r" line (\d+) x{90}$", l) for l in lines) if m]
        self.assertEqual(numbers, list(range(1, FLOOD_LINES + 1)))
        self.assertFalse([l for l in lines if "were lost here" in l])


if __name__ == "__main__":
    unittest.main()
