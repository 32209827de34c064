"""A slow or stalled disk under job.log_root (an NFS server that stops answering): job.log_root is
a FUSE filesystem (slowfs.py) whose writes the test stalls. The agent writes its rank logs from a
thread of its own with a bounded buffer, so a worker printing all along is never blocked for long
and the agent goes on (rank 0's lines keep reaching its console); what the buffer cannot hold is
dropped, counted in outcome.json (exit code 1 when the workers succeeded) and marked by a note in
the rank log. A stall the buffer absorbs loses nothing.

Needs /dev/fuse, root and Debian's python3-fusepy; skipped otherwise. Environment: RUNNER_BIN.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proc_helpers import DrainedProcess, clean_env, read_text, wait_for  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")
SLOWFS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slowfs.py")

# Rank 1 prints a numbered line about every millisecond, each flushed, and records how long its
# longest print took and how far it got (outside job.log_root); it stops at the test's stop file.
# Rank 0 says a tick every 0.2 s: the agent's console shows them while the agent runs.
WORKER = r"""
import os, sys, time
tmp = sys.argv[1]
stop = os.path.join(tmp, "stop")
if os.environ["RANK"] == "0":
    k = 0
    while not os.path.exists(stop):
        print("tick %d" % k, flush=True)
        k += 1
        time.sleep(0.2)
    sys.exit(0)
pad = "x" * 80
n = 0
longest = 0.0
while not os.path.exists(stop):
    n += 1
    t = time.monotonic()
    sys.stdout.write("line %d %s\n" % (n, pad))
    sys.stdout.flush()
    longest = max(longest, time.monotonic() - t)
    if n % 50 == 0:
        with open(os.path.join(tmp, "count.tmp"), "w") as f:
            f.write("%d %.3f" % (n, longest))
        os.replace(os.path.join(tmp, "count.tmp"), os.path.join(tmp, "count"))
    time.sleep(0.001)
print("done %d" % n, flush=True)
with open(os.path.join(tmp, "result"), "w") as f:
    f.write("%d %.3f" % (n, longest))
"""

LINE = re.compile(r" line (\d+) x{80}$")
DROPPED = re.compile(r"\[runner\] (\d+) lines \((\d+) bytes\) of this log were dropped between "
                     r"(\S+) and (\S+): the disk did not keep up \(a write to it had taken [\d.]+ s\)$")


def have_fuse():
    try:
        import fusepy  # noqa: F401
    except ImportError:
        return False
    return os.path.exists("/dev/fuse") and os.geteuid() == 0


class SlowLogDiskTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(RUNNER, "RUNNER_BIN is not set")
        if not have_fuse():
            self.skipTest("needs /dev/fuse, root and python3-fusepy")
        self.tmp = tempfile.mkdtemp(prefix="slow-log-disk-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.tmp])
        self.worker = os.path.join(self.tmp, "worker.py")
        with open(self.worker, "w") as f:
            f.write(WORKER)
        self.stall = os.path.join(self.tmp, "stall")
        self.root = self.mount()

    def mount(self):
        backing = os.path.join(self.tmp, "backing")
        root = os.path.join(self.tmp, "mnt")
        os.mkdir(backing)
        os.mkdir(root)
        fs_log = os.path.join(self.tmp, "slowfs.log")
        with open(fs_log, "w") as log:
            fs = subprocess.Popen(["/usr/bin/python3", SLOWFS, backing, root, "--stall-file",
                                   self.stall], stdout=log, stderr=subprocess.STDOUT)

        def stop_fs():
            fs.kill()
            fs.wait(timeout=30)

        self.addCleanup(stop_fs)
        # Every exit path: writes released first (a stuck runner ends), then the mount goes.
        self.addCleanup(lambda: subprocess.run(["fusermount3", "-u", root], capture_output=True)
                        .returncode == 0 or subprocess.run(["umount", "-l", root]))
        self.addCleanup(lambda: os.path.exists(self.stall) and os.unlink(self.stall))
        wait_for(lambda: os.path.ismount(root) or fs.poll() is not None, 30, "the FUSE mount")
        self.assertIsNone(fs.poll(), "slowfs.py failed: " + read_text(fs_log))
        return root

    def start(self, *settings):
        runner = DrainedProcess([RUNNER, "--log-root", self.root, "--job-name", "t", "--nproc-per-node",
                                 "2", "launch.store_addr=127.0.0.1", *settings, "--",
                                 sys.executable, self.worker, self.tmp],
                                env=clean_env(), cwd=self.tmp)

        def end():
            if runner.poll() is None:
                runner.kill()
                runner.communicate(timeout=30)

        self.addCleanup(end)
        return runner

    def count(self):
        try:
            return int(read_text(os.path.join(self.tmp, "count")).split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def ticks(self, runner):
        return [int(t) for t in re.findall(r"rank 0 \| tick (\d+)", runner.output_so_far())]

    def stall_while_printing(self, runner, lines):
        """Stalls the disk while rank 1 prints `lines` more lines; returns the console's output
        during the stall."""
        wait_for(lambda: self.count() >= 200 and self.ticks(runner), 60, "the workers to print")
        open(self.stall, "w").close()
        first, seen = self.count(), len(runner.output_so_far())
        wait_for(lambda: self.count() >= first + lines, 60,
                 lambda: f"rank 1 to print {lines} lines with the disk stalled (at {self.count()})")
        during = runner.output_so_far()[seen:]
        os.unlink(self.stall)
        return during

    def rank_log(self):
        [job] = [d for d in os.listdir(self.root) if d.startswith("t-")]
        return read_text(os.path.join(self.root, job, "attempt-0", "rank-1.log"))

    def finish(self, runner):
        open(os.path.join(self.tmp, "stop"), "w").close()
        out, _ = runner.communicate(timeout=120)
        [job] = [d for d in os.listdir(self.root) if d.startswith("t-")]
        job = os.path.join(self.root, job)
        with open(os.path.join(job, "outcome.json")) as f:
            outcome = json.load(f)
        with open(os.path.join(job, "attempt-0", "rank-1.log"), "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        total, longest = read_text(os.path.join(self.tmp, "result")).split()
        return out, outcome, lines, int(total), float(longest)

    def test_a_stalled_disk_never_blocks_the_worker_and_drops_are_counted(self):
        runner = self.start("job.log_buffer_mib=0.0625")
        during = self.stall_while_printing(runner, 8000)
        # The agent ran all along: rank 0's ticks and its own warning reached the console.
        self.assertGreaterEqual(len(re.findall(r"rank 0 \| tick \d+", during)), 5, during[-2000:])
        self.assertRegex(during, r"cannot write to \S+/attempt-0/rank-1\.log in time: the disk did "
                                 r"not keep up .*raise job\.log_buffer_mib")
        # Writing catches up: the gap's note comes while rank 1 goes on printing.
        wait_for(lambda: any(map(DROPPED.search, self.rank_log().splitlines())), 60,
                 "the note of the dropped lines")
        wait_for(lambda: LINE.search(self.rank_log().splitlines()[-1]), 60, "lines after the note")
        out, outcome, lines, total, longest = self.finish(runner)
        self.assertEqual(runner.returncode, 1, out[-3000:])
        # The agent waits 1 s for a stalled write before it drops; the stall lasts ~8 s.
        self.assertLess(longest, 4.0, "a print of rank 1 waited this long (s) for the stalled disk")
        self.assertEqual((outcome["exit_code"], outcome["logs_complete"]), (1, False))
        [errors] = [e for e in outcome["log_write_errors"] if e["file"].endswith("/rank-1.log")]
        self.assertRegex(errors["error"], r"^the disk did not keep up")
        self.assertEqual(errors["rank"], 1)
        # Each gap is marked where it is; the notes and the count agree, and every line printed
        # is either in the log, in order, or counted.
        notes = [m for m in map(DROPPED.search, lines) if m]
        self.assertTrue(notes, "no note of the dropped lines in rank-1.log")
        self.assertEqual(sum(int(m.group(1)) for m in notes), errors["lines_lost"])
        self.assertEqual(sum(int(m.group(2)) for m in notes), errors["bytes_lost"])
        numbers = [int(m.group(1)) for m in map(LINE.search, lines) if m]
        self.assertEqual(numbers, sorted(numbers))
        self.assertEqual(len(numbers) + errors["lines_lost"], total)
        self.assertTrue(lines[-2].endswith(" done %d" % total), lines[-3:])

    def test_a_short_stall_the_buffer_absorbs_loses_nothing(self):
        runner = self.start()
        self.stall_while_printing(runner, 1000)
        out, outcome, lines, total, longest = self.finish(runner)
        self.assertEqual(runner.returncode, 0, out[-3000:])
        self.assertEqual((outcome["exit_code"], outcome["logs_complete"], outcome["log_write_errors"]),
                         (0, True, []))
        numbers = [int(m.group(1)) for m in map(LINE.search, lines) if m]
        self.assertEqual(numbers, list(range(1, total + 1)))
        self.assertFalse([line for line in lines if "[runner]" in line and "lines" in line])


if __name__ == "__main__":
    unittest.main()
