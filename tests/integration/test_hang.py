"""The hang watchdog with real processes: Python workers over gloo that publish heartbeats with
README.md's helper (extracted from the README, so the documented code is what runs), agents as
real MPI processes (two under mpirun acting as two nodes), real SIGSTOP, real stacks.

Environment: RUNNER_BIN (the runner executable). Every wait is bounded.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proc_helpers import DrainedProcess, clean_env, processes_with, rank_progress, wait_for  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")
HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "..", "..", "README.md")
PYTHON = "/usr/bin/python3"  # Debian's, with python3-torch
MPIRUN = ["mpirun", "--allow-run-as-root", "--mca", "btl_tcp_if_include", "lo",
          "--mca", "oob_tcp_if_include", "lo"]
HANG_TIMEOUT = 4


def readme_helper():
    """The Python heartbeat helper exactly as README.md shows it."""
    with open(README) as f:
        text = f.read()
    block = re.search(r"<!-- heartbeat-helper:begin -->\n```python\n(.*?)```\n"
                      r"<!-- heartbeat-helper:end -->", text, re.S)
    assert block, "README.md has no heartbeat helper block"
    return block.group(1)


class HangTest(unittest.TestCase):
    LAUNCHER = MPIRUN  # starts the agents of the two-agent cases
    def setUp(self):
        self.assertTrue(RUNNER, "RUNNER_BIN is not set")
        self.tmp = tempfile.TemporaryDirectory(prefix="runner-hang-")
        self.root = os.path.join(self.tmp.name, "logs")
        self.marker = "marker-" + uuid.uuid4().hex[:12]
        with open(os.path.join(self.tmp.name, "runner_heartbeat.py"), "w") as f:
            f.write(readme_helper())
        self.env = clean_env()
        self.env["PYTHONPATH"] = self.tmp.name
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.env["HANG_MARKER"] = self.marker

    def tearDown(self):
        for pid in processes_with(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.tmp.cleanup()

    def args(self, *extra, nproc=2, first_step=120, hang=HANG_TIMEOUT, grace=30):
        return [RUNNER, "--log-root", self.root, "--job-name", "h", "--nproc-per-node", str(nproc),
                "launch.store_addr=127.0.0.1", f"launch.hang_timeout_s={hang}",
                f"launch.first_step_timeout_s={first_step}", f"launch.grace_period_s={grace}",
                *extra]

    def python_worker(self):
        return ["--", PYTHON, os.path.join(HERE, "workers", "hang_gloo.py"), self.marker]

    def job_dir(self):
        dirs = os.listdir(self.root) if os.path.isdir(self.root) else []
        return os.path.join(self.root, dirs[0]) if len(dirs) == 1 else None

    def attempt(self, *parts):
        return os.path.join(self.job_dir(), "attempt-0", *parts)

    def progress_of(self, rank):
        """Rank `rank`'s entry in the agents' progress files, or None."""
        job = self.job_dir()
        return rank_progress(job and os.path.join(job, "attempt-0"), rank)

    def read_json(self, *parts):
        with open(self.attempt(*parts)) as f:
            return json.load(f)

    def test_a_stopped_worker_of_four_under_two_agents_is_named_with_every_stack(self):
        cmd = list(self.LAUNCHER)
        for i, host in enumerate(["nodeA", "nodeB"]):
            cmd += ([":"] if i else []) + ["-np", "1", "-x", f"RUNNER_HOSTNAME={host}", "-x",
                                           "PYTHONPATH"] + self.args() + self.python_worker()
        proc = DrainedProcess(cmd, env=self.env, cwd=self.tmp.name)
        try:
            rank3 = wait_for(lambda: (lambda p: p if p and p.get("step", 0) >= 3 else None)(
                self.progress_of(3)), timeout=90, what="rank 3 at step 3 in the progress files")
            os.kill(rank3["pid"], signal.SIGSTOP)
            stopped_at = time.monotonic()
            out, _ = proc.communicate(timeout=HANG_TIMEOUT + 60)
            took = time.monotonic() - stopped_at
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, 13, out)
        self.assertLess(took, HANG_TIMEOUT + 10, out)
        outcome = self.read_json("outcome.json")
        self.assertEqual(outcome["exit_code"], 13)
        headline = outcome["hang"][0]
        self.assertRegex(headline, r"^HANG at step \d+: rank 3 \(nodeB, pid %d\) stopped \(T\)"
                         % rank3["pid"])
        self.assertRegex(headline, r"ranks 0-2 waiting in all-reduce #\d+")
        self.assertIn(headline, out)  # on the console too
        diagnosis = self.read_json("diagnosis", "diagnosis.json")
        self.assertEqual([r["rank"] for r in diagnosis["laggards"]], [3])
        self.assertEqual(diagnosis["laggards"][0]["proc_state"], "T")
        for rank in range(4):
            with open(self.attempt("diagnosis", f"rank-{rank}.txt")) as f:
                stack = f.read()
            self.assertIn(f"rank {rank} on node", stack)
            self.assertRegex(stack, r"#0 ", f"rank {rank} has no stack frames:\n{stack[:2000]}")
        with open(os.path.join(self.job_dir(), "events.jsonl")) as f:
            events = [json.loads(line)["event"] for line in f]
        self.assertIn("hang_warning", events)
        self.assertIn("hang", events)
        # What an operator runs on the hung job's directory.
        status = subprocess.run([RUNNER, "status", self.job_dir()], capture_output=True,
                                text=True, timeout=30)
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertIn("state: hung, exit code 13", status.stdout)
        self.assertIn(headline, status.stdout)
        as_json = json.loads(subprocess.run([RUNNER, "status", "--json", self.job_dir()],
                                            capture_output=True, text=True, timeout=30).stdout)
        self.assertEqual(as_json["state"], "hung")
        logs = subprocess.run([RUNNER, "logs", "--rank", "3", self.job_dir()],
                              capture_output=True, text=True, timeout=30)
        self.assertIn(f"nodeB:3 ", logs.stdout)
        self.assertIn(f"READY rank 3 pid {rank3['pid']}", logs.stdout)

    def test_a_worker_that_skips_an_all_reduce_is_named(self):
        env = dict(self.env, HANG_MODE="skip:1:3", STEPS="6")
        proc = subprocess.run(self.args(nproc=3) + self.python_worker(), capture_output=True,
                              text=True, env=env, cwd=self.tmp.name, timeout=120)
        out = proc.stdout + proc.stderr
        self.assertEqual(proc.returncode, 13, out)
        lines = self.read_json("outcome.json")["hang"]
        self.assertRegex(lines[0], r"^HANG at step 5: rank 1 \(\S+, pid \d+\) sleeping \(S\) in "
                         r"barrier #6 at step 5 for \d+ s; ranks 0,2 waiting in all-reduce #6$")
        self.assertIn("the ranks disagree on collective #6: ranks 0,2 in all-reduce, rank 1 in "
                      "barrier (a collective skipped or added on some ranks)", lines)

    def test_a_silent_worker_without_heartbeat_is_judged_on_weak_evidence(self):
        script = 'echo started; sleep 120'
        proc = subprocess.run(self.args(nproc=1, first_step=HANG_TIMEOUT) +
                              ["--", "sh", "-c", script, self.marker],
                              capture_output=True, text=True, env=self.env, cwd=self.tmp.name,
                              timeout=60)
        out = proc.stdout + proc.stderr
        self.assertEqual(proc.returncode, 13, out)
        lines = self.read_json("outcome.json")["hang"]
        self.assertRegex(lines[0], r"^HANG: rank 0 \(\S+, pid \d+\) sleeping \(S\), publishes no "
                         r"heartbeat for \d+ s$")
        self.assertTrue(any(line.startswith("weak evidence:") for line in lines), lines)

    def test_twelve_silent_workers_on_each_of_two_agents_are_judged_together(self):
        # Each agent's suspicion carries its 12 ranks' views (several KiB): the notice channel
        # must carry messages of any size.
        cmd = list(self.LAUNCHER)
        for i, host in enumerate(["nodeA", "nodeB"]):
            cmd += ([":"] if i else []) + ["-np", "1", "-x", f"RUNNER_HOSTNAME={host}"] + \
                self.args(nproc=12, first_step=HANG_TIMEOUT) + \
                ["--", "sh", "-c", "sleep 120", self.marker]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env,
                              cwd=self.tmp.name, timeout=90)
        self.assertEqual(proc.returncode, 13, proc.stdout[-3000:] + proc.stderr[-3000:])
        diagnosis = self.read_json("diagnosis", "diagnosis.json")
        ranks = sorted(r["rank"] for r in diagnosis["laggards"] + diagnosis["waiting"])
        self.assertEqual(ranks, list(range(24)))
        self.assertEqual(sorted(os.listdir(self.attempt("diagnosis"))),
                         sorted(["diagnosis.json"] + [f"rank-{r}.txt" for r in range(24)]))

    def test_a_hang_starts_the_next_attempt_when_restarts_remain(self):
        script = 'if [ "$TORCHELASTIC_RESTART_COUNT" = 0 ]; then sleep 120; fi; echo fine'
        proc = subprocess.run(self.args("launch.max_restarts=1", nproc=1, first_step=HANG_TIMEOUT) +
                              ["--", "sh", "-c", script, self.marker],
                              capture_output=True, text=True, env=self.env, cwd=self.tmp.name,
                              timeout=60)
        out = proc.stdout + proc.stderr
        self.assertEqual(proc.returncode, 0, out)
        with open(self.attempt("outcome.json")) as f:
            first = json.load(f)
        self.assertEqual((first["status"], first["exit_code"]), ("restarting", 13))
        self.assertTrue(first["hang"][0].startswith("HANG: rank 0"), first["hang"])
        with open(os.path.join(self.job_dir(), "outcome.json")) as f:
            self.assertEqual(json.load(f)["status"], "succeeded")

    def trainer_job(self, *extra, hang=HANG_TIMEOUT):
        """The bundled trainer (configs/smoke.yaml, long enough to be stopped) under one agent."""
        smoke = os.path.join(HERE, "..", "..", "configs", "smoke.yaml")
        start = time.monotonic()
        proc = subprocess.run(self.args("--config", smoke, "train.epochs=1000", *extra, hang=hang),
                              capture_output=True, text=True, env=self.env, cwd=self.tmp.name,
                              timeout=120)
        return proc, proc.stdout + proc.stderr, time.monotonic() - start

    def test_a_trainer_rank_slowed_in_a_named_phase_is_named_with_that_phase(self):
        proc, out, _ = self.trainer_job("train.fault_inject=1:data:600@3")
        self.assertEqual(proc.returncode, 13, out[-3000:])
        lines = self.read_json("outcome.json")["hang"]
        self.assertRegex(lines[0], r"^HANG at step 3: rank 1 \(\S+, pid \d+\) sleeping \(S\) in "
                         r"phase data at step 3 for \d+ s; rank 0 waiting in all-reduce #\d+ "
                         r"\(bucket \d+/\d+\)$")

    def test_the_collective_timeout_still_ends_a_job_with_the_watchdog_off(self):
        timeout = 4
        smoke = os.path.join(HERE, "..", "..", "configs", "smoke.yaml")
        proc = DrainedProcess(self.args("--config", smoke, "train.epochs=1000",
                                        "train.fault_inject=1:data:600@3",
                                        f"train.collective_timeout_s={timeout}", hang=0,
                                        grace=1),  # the sleeping rank ignores SIGTERM
                              env=self.env, cwd=self.tmp.name)
        try:
            wait_for(lambda: (lambda p: p and p.get("step") == 3 and p.get("phase") == "data")(
                self.progress_of(1)), timeout=90, what="rank 1 asleep in phase data at step 3")
            seen = time.monotonic()  # at most one progress interval (2 s) after it fell asleep
            out, _ = proc.communicate(timeout=timeout + 60)
            took = time.monotonic() - seen
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, 20, out[-3000:])
        failure = self.read_json("outcome.json")["first_failure"]
        self.assertEqual((failure["rank"], failure["exit_code"]), (0, 5), failure)
        self.assertNotIn("HANG", out)
        self.assertLess(took, timeout + 5, out[-3000:])

    def test_the_watchdog_off_leaves_a_quiet_worker_alone(self):
        script = 'sleep 3; echo done'
        proc = subprocess.run(self.args(nproc=1, first_step=1, hang=0) +
                              ["--", "sh", "-c", script, self.marker],
                              capture_output=True, text=True, env=self.env, cwd=self.tmp.name,
                              timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("hang watchdog off", proc.stderr)


class HangTcpTest(HangTest):
    """The two-agent cases with the agents meeting over TCP at node 0's store, no MPI."""
    LAUNCHER = [PYTHON, os.path.join(HERE, "tcp_launch.py")]


if __name__ == "__main__":
    unittest.main()
