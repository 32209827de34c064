"""Checkpoints, stops and resume through the runner with real signals, real kills and a real
full disk (a tiny tmpfs; root). Workers are the bundled trainer on synthetic data.

Environment: RUNNER_BIN.
"""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proc_helpers import DrainedProcess, clean_env, read_text, wait_for  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")
CLEAN_ENV = clean_env("TRAINER_")
# Big enough that steps take a few milliseconds and a checkpoint is megabytes.
JOB = ["--nproc-per-node", "2", "train.model=mlp", "train.hidden_sizes=[512,512]", "train.dataset=synthetic",
       "train.synthetic_samples=4096", "train.batch_size=32", "train.epochs=2", "train.lr=0.05",
       "train.lr_schedule=cosine", "train.warmup_steps=5", "train.augment=true", "train.log_every=1",
       "train.eval_every_epoch=false", "job.seed=3"]


class CheckpointTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(RUNNER, "RUNNER_BIN is not set")
        self.tmp = tempfile.TemporaryDirectory(prefix="checkpoint-test-")
        self.root = os.path.join(self.tmp.name, "logs")

    def tearDown(self):
        subprocess.run(["umount", "-l", os.path.join(self.tmp.name, "small")], capture_output=True)
        self.tmp.cleanup()

    def start(self, name, *args, env=None, root=None):
        return DrainedProcess([RUNNER, "--log-root", root or self.root, "--job-name", name, *JOB, *args],
                              env=dict(CLEAN_ENV, **(env or {})), cwd=self.tmp.name)

    def run_job(self, name, *args, env=None, root=None):
        proc = self.start(name, *args, env=env, root=root)
        out, _ = proc.communicate(timeout=300)
        return proc.returncode, out, self.job_dir(name, root)

    def job_dir(self, name, root=None):
        root = root or self.root
        dirs = [d for d in os.listdir(root) if d.startswith(name + "-")]
        self.assertEqual(len(dirs), 1, dirs)
        return os.path.join(root, dirs[0])

    @staticmethod
    def final(job):
        """(digest, the last progress line without its timings) of the newest attempt."""
        log = read_text(os.path.join(job, "current", "train.log"))
        digest = re.search(r"parameter digest (\w+)", log).group(1)
        lines = re.findall(r"(epoch \d+/\d+ step (\d+)/\d+ loss \S+ lr \S+)", log)
        return digest, lines[-1][0]

    def test_sigterm_stop_then_resume_is_bit_identical(self):
        code, out, straight = self.run_job("straight")
        self.assertEqual(code, 0, out[-3000:])
        digest, last_line = self.final(straight)

        proc = self.start("cut")
        job = wait_for(lambda: os.path.isdir(self.root) and
                       [d for d in os.listdir(self.root) if d.startswith("cut-")] and self.job_dir("cut"),
                       60, "the job directory")
        log = os.path.join(job, "attempt-0", "train.log")
        wait_for(lambda: os.path.exists(log) and re.search(r"step (4\d|[5-9]\d|\d{3})/", read_text(log)),
                 60, "step 40 in train.log")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 10, out[-3000:])
        self.assertEqual(json.loads(read_text(os.path.join(job, "outcome.json")))["status"], "stopped")
        stopped_at = int(re.search(r"stopping after step (\d+): stop signal", read_text(log)).group(1))
        self.assertEqual(read_text(os.path.join(job, "checkpoints", "latest")).strip(), "step-%06d" % stopped_at)

        code, out, resumed = self.run_job("resumed", "train.resume=" + os.path.join(job, "checkpoints"))
        self.assertEqual(code, 0, out[-3000:])
        self.assertIn(f"resumed from {job}/checkpoints/step-{stopped_at:06d} at step {stopped_at}",
                      read_text(os.path.join(resumed, "current", "train.log")))
        self.assertEqual(self.final(resumed), (digest, last_line))

    def test_kill_9_of_rank_0_while_writing_keeps_the_previous_checkpoint(self):
        proc = self.start("killed", "train.checkpoint_every=5", env={"TRAINER_TEST_CHECKPOINT_DELAY_MS": "30"})
        job = wait_for(lambda: os.path.isdir(self.root) and
                       [d for d in os.listdir(self.root) if d.startswith("killed-")] and self.job_dir("killed"),
                       60, "the job directory")
        checkpoints = os.path.join(job, "checkpoints")
        wait_for(lambda: os.path.exists(os.path.join(checkpoints, "latest")), 60, "the first checkpoint")
        wait_for(lambda: [d for d in os.listdir(checkpoints) if d.startswith(".tmp-step-000010")],
                 60, "the second checkpoint being written")
        rank0 = None
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read().split(b"\0")
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm == "trainer" and b"RANK=0" in env and f"RUNNER_JOB_DIR={job}".encode() in env:
                rank0 = int(pid)
        self.assertIsNotNone(rank0, "rank 0's trainer process not found")
        os.kill(rank0, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 21, out[-3000:])
        self.assertEqual(read_text(os.path.join(checkpoints, "latest")).strip(), "step-000005")
        self.assertFalse(os.path.exists(os.path.join(checkpoints, "step-000010")))
        # The previous checkpoint loads and training goes on from it.
        code, out, resumed = self.run_job("after-kill", "train.resume=" + checkpoints, "train.max_steps=8")
        self.assertEqual(code, 0, out[-3000:])
        self.assertIn("at step 5", read_text(os.path.join(resumed, "current", "train.log")))

    def test_full_disk_is_a_clear_error_and_latest_stays_good(self):
        small = os.path.join(self.tmp.name, "small")
        os.makedirs(small)
        mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", small], capture_output=True, text=True)
        self.assertEqual(mount.returncode, 0, "this test needs root to mount a small tmpfs: " + mount.stderr)
        # One checkpoint (~5.4 MB: weights and momentum) fits; a second beside it does not.
        code, out, job = self.run_job("full", "train.checkpoint_every=5", "train.keep_checkpoints=1",
                                      root=os.path.join(small, "logs"))
        self.assertEqual(code, 20, out[-3000:])
        failure = json.loads(read_text(os.path.join(job, "outcome.json")))["first_failure"]
        self.assertEqual((failure["rank"], failure["exit_code"]), (0, 4))
        message = "\n".join(failure["last_lines"])
        self.assertRegex(message, r"checkpoint: cannot write '.*/\.tmp-step-000010-\d+/\w+\.pt': No space left on device; "
                                  r"the disk \(or quota\) is full")
        self.assertEqual(read_text(os.path.join(job, "checkpoints", "latest")).strip(), "step-000005")
        self.assertEqual(sorted(os.listdir(os.path.join(job, "checkpoints"))), ["latest", "step-000005"])

    def test_walltime_stops_with_a_checkpoint_before_the_end(self):
        code, out, job = self.run_job("walltime", "train.stop_margin_s=30",
                                      env={"SLURM_JOB_END_TIME": str(int(time.time()) + 20)})
        self.assertEqual(code, 10, out[-3000:])
        log = read_text(os.path.join(job, "current", "train.log"))
        self.assertRegex(log, r"stopping after step 1: the job's end time \(SLURM_JOB_END_TIME\) is near: \d+s left")
        self.assertEqual(read_text(os.path.join(job, "checkpoints", "latest")).strip(), "step-000001")

    def test_preemption_signal_checkpoints_and_stops_without_requeue_outside_slurm(self):
        # Long enough that the workers pass the runner's 5 s hold on relayed signals.
        proc = self.start("preempt", "launch.requeue=true", "train.epochs=20")
        job = wait_for(lambda: os.path.isdir(self.root) and
                       [d for d in os.listdir(self.root) if d.startswith("preempt-")] and self.job_dir("preempt"),
                       60, "the job directory")
        log = os.path.join(job, "attempt-0", "train.log")
        wait_for(lambda: os.path.exists(log) and re.search(r"step (1\d|[2-9]\d|\d{3})/", read_text(log)), 60, "step 10")
        proc.send_signal(signal.SIGUSR1)
        out, _ = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 10, out[-3000:])
        self.assertIn("not requeueing (not a Slurm job)", out)
        self.assertRegex(read_text(log), r"stopping after step \d+: preemption signal \(checkpoint, then requeue\)")
        self.assertTrue(os.path.exists(os.path.join(job, "checkpoints", "latest")))

    def test_preemption_signal_at_start_up_is_held_not_fatal(self):
        # SIGUSR1 while the workers are still loading LibTorch (no handler yet) must not kill them:
        # the runner holds it until they are 5 s old, then the trainer checkpoints and stops.
        proc = self.start("early", "train.epochs=20")
        attempt = os.path.join(self.root, "early-*", "attempt-0")
        wait_for(lambda: len(glob.glob(os.path.join(attempt, "rank-*.log"))) == 2, 60,
                 "both workers of the job 'early' to be started (their rank logs)")
        proc.send_signal(signal.SIGUSR1)
        out, _ = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 10, out[-3000:])
        self.assertIn("has no SIGUSR1 handler yet (still starting): SIGUSR1 held until it has one", out)
        job = self.job_dir("early")
        self.assertRegex(read_text(os.path.join(job, "current", "train.log")),
                         r"stopping after step \d+: preemption signal")

    def test_the_signal_that_is_not_the_preempt_signal_is_ignored_with_a_note(self):
        # The runner relays SIGUSR1 and SIGUSR2 alike; with launch.preempt_signal USR1 the trainer
        # must survive SIGUSR2 (its default action kills) and say that it ignored it.
        proc = self.start("usr2", "launch.preempt_signal=USR1", "train.epochs=20")
        job = wait_for(lambda: os.path.isdir(self.root) and
                       [d for d in os.listdir(self.root) if d.startswith("usr2-")] and self.job_dir("usr2"),
                       60, "the job directory")
        log = os.path.join(job, "attempt-0", "train.log")
        wait_for(lambda: os.path.exists(log) and re.search(r"step (1\d|[2-9]\d|\d{3})/", read_text(log)), 60, "step 10")
        proc.send_signal(signal.SIGUSR2)
        note = "received SIGUSR2, which is not the preempt signal (launch.preempt_signal: USR1): ignored"
        ranks = [os.path.join(job, "attempt-0", f"rank-{r}.log") for r in (0, 1)]
        wait_for(lambda: all(note in read_text(r) for r in ranks) or proc.poll() is not None, 60,
                 "both ranks to note the ignored SIGUSR2")
        self.assertIsNone(proc.poll(), "the job ended after SIGUSR2")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 10, out[-3000:])
        self.assertRegex(read_text(log), r"stopping after step \d+: stop signal")
        self.assertTrue(os.path.exists(os.path.join(job, "checkpoints", "latest")))

    def test_a_second_sigterm_spares_workers_that_saved_and_are_exiting(self):
        # Two quick SIGTERMs: the second arrives after the checkpoint is written and the trainer
        # said done, while it tears down (widened to 3 s here). That is a clean stop, not a kill.
        proc = self.start("twice", "train.epochs=20", env={"TRAINER_TEST_EXIT_DELAY_MS": "3000"})
        job = wait_for(lambda: os.path.isdir(self.root) and
                       [d for d in os.listdir(self.root) if d.startswith("twice-")] and self.job_dir("twice"),
                       60, "the job directory")
        log = os.path.join(job, "attempt-0", "train.log")
        wait_for(lambda: os.path.exists(log) and re.search(r"step (1\d|[2-9]\d|\d{3})/", read_text(log)), 60, "step 10")
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "done:" in read_text(log), 60, "the trainer to say done")
        self.assertIsNone(proc.poll(), "the job ended before the second SIGTERM")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 10, out[-3000:])
        self.assertIn("has saved its work and is exiting: left to finish", out)
        self.assertNotIn("may not be saved", out)
        outcome = json.loads(read_text(os.path.join(job, "outcome.json")))
        self.assertEqual(outcome["status"], "stopped")
        stopped_at = int(re.search(r"stopping after step (\d+): stop signal", read_text(log)).group(1))
        self.assertEqual(outcome["checkpoint"]["name"], "step-%06d" % stopped_at)
        self.assertTrue(outcome["checkpoint"]["this_attempt"])
        self.assertEqual(outcome["saved"], "checkpoint step-%06d saved during this attempt" % stopped_at)


if __name__ == "__main__":
    unittest.main()
