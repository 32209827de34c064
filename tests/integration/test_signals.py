"""Signals and deaths around the runner itself, with real processes: a config that is not a file
(a pipe that never ends, a fifo nobody writes, a directory), a stop signal that arrives while the
config is read, SIGQUIT to a running agent, and an agent killed by SIGKILL whose job is started
again in the same job directory.

Environment: RUNNER_BIN (the runner executable). Every wait is bounded.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proc_helpers import clean_env, processes_with, read_text, wait_for  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")
CLEAN_ENV = clean_env()
FIX = "to use generated text or a pipe, write it to a file first"


def with_pending(sig):
    """A preexec_fn: `sig` blocked and already sent, so it is pending when the runner starts."""
    def block_and_send():
        signal.pthread_sigmask(signal.SIG_BLOCK, [sig])
        os.kill(os.getpid(), sig)
    return block_and_send


class SignalsTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(RUNNER, "RUNNER_BIN is not set")
        self.tmp = tempfile.TemporaryDirectory(prefix="runner-signals-")
        self.root = os.path.join(self.tmp.name, "logs")
        self.marker = "marker-" + uuid.uuid4().hex[:12]
        self.config = os.path.join(self.tmp.name, "job.yaml")
        with open(self.config, "w") as f:
            f.write("launch:\n  nproc_per_node: 1\n")

    def tearDown(self):
        leftovers = processes_with(self.marker)
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.tmp.cleanup()
        self.assertEqual(leftovers, [], "processes of the job outlived it")

    def args(self, *extra, worker="true"):
        return [RUNNER, "--log-root", self.root, "--job-name", "t", "--nproc-per-node", "1",
                "launch.store_addr=127.0.0.1", *extra, "--", "sh", "-c", worker, self.marker]

    def job_dir(self):
        dirs = os.listdir(self.root)
        self.assertEqual(len(dirs), 1, dirs)
        return os.path.join(self.root, dirs[0])

    def events(self):
        with open(os.path.join(self.job_dir(), "events.jsonl")) as f:
            return [json.loads(line) for line in f]

    def test_a_config_that_is_not_a_regular_file_is_refused_at_once(self):
        fifo = os.path.join(self.tmp.name, "job.fifo")
        os.mkfifo(fifo)
        # `sleep 15 | runner --config /dev/stdin`: a pipe that stays open for 15 s.
        sleeper = subprocess.Popen(["sleep", "15"], stdout=subprocess.PIPE)
        self.addCleanup(sleeper.stdout.close)
        self.addCleanup(sleeper.wait)
        self.addCleanup(sleeper.kill)
        # (the path given, what it is, the runner's stdin)
        cases = [
            ("/dev/stdin", "a pipe (fifo)", sleeper.stdout),
            (fifo, "a pipe (fifo)", subprocess.DEVNULL),  # opening it waits for a writer
            (self.tmp.name, "a directory", subprocess.DEVNULL),
            ("/dev/null", "a character device", subprocess.DEVNULL),
        ]
        for path, kind, stdin in cases:
            with self.subTest(path=path):
                # A runner that reads the pipe or opens the fifo waits: the timeout says so.
                proc = subprocess.run([RUNNER, "--config", path, "--dry-run"], stdin=stdin,
                                      capture_output=True, text=True, timeout=10, env=CLEAN_ENV,
                                      cwd=self.tmp.name)
                self.assertEqual(proc.returncode, 3, proc.stderr)
                self.assertIn(f"config file '{path}' is {kind}, not a regular file", proc.stderr)
                self.assertIn(FIX, proc.stderr)

    def test_a_stop_signal_while_the_config_is_read_ends_the_runner(self):
        # (signal, extra arguments, exit code, what stderr says): an error found first is still
        # reported with its own code (srun --kill-on-bad-exit sends SIGTERM to the others).
        cases = [
            (signal.SIGTERM, ["--config", self.config], 10,
             "stopped by SIGTERM while the config was read; no worker was started"),
            (signal.SIGINT, ["--config", self.config, "--dry-run"], 10,
             "stopped by SIGINT while the config was read; no worker was started"),
            (signal.SIGQUIT, ["--config", self.config], 10,
             "stopped by SIGQUIT while the config was read; no worker was started"),
            (signal.SIGTERM, ["--config", self.config, "launch.nproc_per_node=zero"], 3,
             "launch.nproc_per_node"),
        ]
        for i, (sig, extra, code, said) in enumerate(cases):
            with self.subTest(signal=sig.name, extra=extra):
                started = os.path.join(self.tmp.name, f"started-{i}")
                proc = subprocess.run(self.args(*extra, worker=f"touch {started}; sleep 60"),
                                      capture_output=True, text=True, timeout=30, env=CLEAN_ENV,
                                      cwd=self.tmp.name, preexec_fn=with_pending(sig))
                self.assertEqual(proc.returncode, code, proc.stderr)
                self.assertIn(said, proc.stderr)
                self.assertFalse(os.path.exists(started), "a worker was started")

    def test_a_stop_signal_during_the_rendezvous_ends_the_runner(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        # (node rank started alone of two, the signal, the line that says it is waiting, the phase)
        cases = [
            (0, signal.SIGTERM, "meeting the other 1 agent(s)", "waiting for the other agents"),
            (1, signal.SIGINT, "meeting the other 1 agent(s)", "trying to reach node 0"),
        ]
        for node, sig, waiting, phase in cases:
            with self.subTest(node=node, signal=sig.name):
                env = dict(CLEAN_ENV, NNODES="2", NODE_RANK=str(node), MASTER_ADDR="127.0.0.1",
                           MASTER_PORT=str(port))
                err_path = os.path.join(self.tmp.name, f"stderr-{node}")
                with open(err_path, "w") as err:
                    proc = subprocess.Popen(self.args("launch.rendezvous_timeout_s=120"),
                                            stdout=subprocess.DEVNULL, stderr=err, env=env,
                                            cwd=self.tmp.name)
                try:
                    wait_for(lambda: waiting in read_text(err_path), 20, "the rendezvous to begin")
                    proc.send_signal(sig)
                    proc.wait(timeout=20)  # not the 120 s of launch.rendezvous_timeout_s
                finally:
                    proc.kill()
                said = read_text(err_path)
                self.assertEqual(proc.returncode, 10, said)
                self.assertIn(f"stopped by {sig.name} while {phase} at the rendezvous", said)

    def test_sigquit_stops_like_sigterm_and_leaves_the_outcome(self):
        proc = subprocess.Popen(self.args(worker="touch started; sleep 60"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=CLEAN_ENV, cwd=self.tmp.name)
        try:
            wait_for(lambda: os.path.exists(os.path.join(self.tmp.name, "started")), 20,
                     "the worker to start")
            proc.send_signal(signal.SIGQUIT)
            _, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        self.assertEqual(proc.returncode, 10, err)
        outcome = json.loads(read_text(os.path.join(self.job_dir(), "outcome.json")))
        self.assertEqual((outcome["status"], outcome["exit_code"]), ("stopped", 10))
        signals = [e.get("signal") for e in self.events() if e["event"] == "signal"]
        self.assertIn("SIGQUIT", signals)

    def test_a_second_run_on_the_same_job_directory_is_refused_naming_the_first(self):
        # A batch script that starts the runner twice with one job id: one job directory.
        env = dict(CLEAN_ENV, NNODES="1", NODE_RANK="0", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT="29998", TORCHELASTIC_RUN_ID="twice")
        first = subprocess.Popen(self.args(worker="touch started; sleep 60"),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                 cwd=self.tmp.name)
        try:
            wait_for(lambda: os.path.exists(os.path.join(self.tmp.name, "started")), 20,
                     "the first run's worker to start")
            second = subprocess.run(self.args(worker="echo second"), capture_output=True,
                                    text=True, env=env, cwd=self.tmp.name, timeout=30)
            self.assertEqual(second.returncode, 4, second.stderr)
            self.assertIn("is in use by a running job (host ", second.stderr)
            self.assertIn(f" pid {first.pid} since ", second.stderr)
            self.assertIn("fix: give this run another --job-name", second.stderr)
            self.assertIsNone(first.poll(), "the first run did not survive the second")
            first.send_signal(signal.SIGTERM)
            self.assertEqual(first.wait(timeout=30), 10)
        finally:
            first.kill()
        self.assertEqual(sorted(d for d in os.listdir(self.job_dir()) if d.startswith("attempt-")),
                         ["attempt-0"])
        # Once the first has ended, a run with the same id gets the next attempt.
        third = subprocess.run(self.args(worker="echo third"), capture_output=True, text=True,
                               env=env, cwd=self.tmp.name, timeout=30)
        self.assertEqual(third.returncode, 0, third.stderr)
        self.assertTrue(os.path.isdir(os.path.join(self.job_dir(), "attempt-1")))

    def test_an_agent_killed_without_a_word_is_named_by_the_next_start(self):
        # The same job id (as a requeue under Slurm): the same job directory, the next attempt.
        env = dict(CLEAN_ENV, NNODES="1", NODE_RANK="0", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT="29999", TORCHELASTIC_RUN_ID="again")
        proc = subprocess.Popen(self.args(worker="touch started; sleep 60"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                cwd=self.tmp.name)
        try:
            wait_for(lambda: os.path.exists(os.path.join(self.tmp.name, "started")), 20,
                     "the worker to start")
        finally:
            proc.kill()
        proc.wait(timeout=10)
        wait_for(lambda: not processes_with(self.marker), 10, "the workers to die with their agent")
        self.assertFalse(os.path.exists(os.path.join(self.job_dir(), "attempt-0", "outcome.json")))
        again = subprocess.run(self.args(), capture_output=True, text=True, timeout=60, env=env,
                               cwd=self.tmp.name)
        self.assertEqual(again.returncode, 0, again.stderr)
        said = ("attempt-0 ended without a record (no attempt-0/outcome.json): its agents died "
                "without a word (SIGKILL, the OOM killer or a node failure?)")
        self.assertIn(said, again.stderr)
        unrecorded = [e for e in self.events() if e["event"] == "previous_attempt_unrecorded"]
        self.assertEqual([(e["attempt"], e["previous_attempt"]) for e in unrecorded], [(1, 0)])
        self.assertIn(said, unrecorded[0]["message"])


if __name__ == "__main__":
    unittest.main()
