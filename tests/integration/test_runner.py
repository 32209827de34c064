"""The runner with real processes: workers are small shell or Python programs, agents are real
MPI processes (singleton, or two under mpirun acting as two nodes through RUNNER_HOSTNAME).
RunnerTcpTest runs the two-agent cases again with the agents meeting over TCP (tcp_launch.py).

Environment: RUNNER_BIN (the runner executable). Every wait is bounded.
"""
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proc_helpers import clean_env, processes_with, read_text, wait_for  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")
HERE = os.path.dirname(os.path.abspath(__file__))
MPIRUN = ["mpirun", "--allow-run-as-root", "--mca", "btl_tcp_if_include", "lo",
          "--mca", "oob_tcp_if_include", "lo"]
# Scheduler variables of an enclosing job must not leak into these tests.
CLEAN_ENV = clean_env()


class RunnerTest(unittest.TestCase):
    LAUNCHER = MPIRUN  # starts the agents of the two-node cases
    ABORT = "MPI_Abort"  # how an agent that cannot go on ends the others

    def setUp(self):
        self.assertTrue(RUNNER, "RUNNER_BIN is not set")
        self.tmp = tempfile.TemporaryDirectory(prefix="runner-test-")
        self.root = os.path.join(self.tmp.name, "logs")
        self.marker = "marker-" + uuid.uuid4().hex[:12]

    def tearDown(self):
        deadline = time.monotonic() + 10
        while processes_with(self.marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        leftovers = processes_with(self.marker)
        described = []
        for pid in leftovers:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    described.append(f"{pid}: " + f.read().replace(b"\0", b" ").decode(errors="replace")[:200])
            except OSError:
                pass
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.tmp.cleanup()
        self.assertEqual(leftovers, [], "processes of the job outlived it:\n" + "\n".join(described))

    # --- helpers -------------------------------------------------------------------------------

    def runner_args(self, *extra, name="t", nproc=2):
        return [RUNNER, "--log-root", self.root, "--job-name", name, "--nproc-per-node", str(nproc),
                "launch.store_addr=127.0.0.1", *extra]

    def sh_worker(self, script):
        # The marker rides along as $0 so leftover processes can be found.
        # The sleeps inside worker scripts are the scenarios, not waits: `sleep 60` and
        # `while :; do sleep 0.1; done` keep a worker running until the test or the runner ends it,
        # and a short sleep before an exit or in a trap is the delay the scenario is about.
        return ["--", "sh", "-c", script, self.marker]

    def run_runner(self, args, timeout=60, env=None):
        start = time.monotonic()
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              env=env or CLEAN_ENV, cwd=self.tmp.name)
        return proc, time.monotonic() - start

    def job_dir(self, name="t"):
        dirs = [d for d in os.listdir(self.root) if d.startswith(name + "-")]
        self.assertEqual(len(dirs), 1, dirs)
        return os.path.join(self.root, dirs[0])

    def read_json(self, path):
        with open(path) as f:
            return json.load(f)

    def mpirun_two_nodes(self, extra_per_node, hosts=("nodeA", "nodeB")):
        """mpirun (or tcp_launch.py) with one agent per host, each acting as a node."""
        cmd = list(self.LAUNCHER)
        for i, host in enumerate(hosts):
            if i:
                cmd.append(":")
            cmd += ["-np", "1", "-x", f"RUNNER_HOSTNAME={host}"] + extra_per_node(host)
        return cmd

    # --- tests ---------------------------------------------------------------------------------

    def test_one_node_two_workers_and_the_job_directory(self):
        proc, _ = self.run_runner(self.runner_args(*self.sh_worker(
            'echo "rank=$RANK local=$LOCAL_RANK world=$WORLD_SIZE lws=$LOCAL_WORLD_SIZE '
            'node=$NODE_RANK master=$MASTER_ADDR:$MASTER_PORT agent_store=$TORCHELASTIC_USE_AGENT_STORE '
            'restart=$TORCHELASTIC_RESTART_COUNT omp=$OMP_NUM_THREADS ompi=$(env | grep -c ^OMPI_)"; '
            'echo partial-line-without-newline | tr -d "\\n"')))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        job = self.job_dir()
        # Layout operators rely on (README.md, "The job directory").
        for name in ["job.yaml", "manifest.json", "events.jsonl", "outcome.json", "checkpoints",
                     "attempt-0", "current"]:
            self.assertTrue(os.path.exists(os.path.join(job, name)), name)
        self.assertEqual(os.readlink(os.path.join(job, "current")), "attempt-0")
        self.assertEqual(stat.S_IMODE(os.stat(job).st_mode) & 0o007, 0, "job directory is world-accessible")
        attempt = os.path.join(job, "attempt-0")
        host = self.read_json(os.path.join(job, "manifest.json"))["nodes"][0]["host"]
        self.assertTrue(os.path.exists(os.path.join(attempt, f"runner-{host}.log")))
        for rank in (0, 1):
            with open(os.path.join(attempt, f"rank-{rank}.log")) as f:
                lines = f.read().splitlines()
            ts = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d "
            for line in lines:
                self.assertRegex(line, ts)
            self.assertRegex(lines[0], rf"\[runner\] rank {rank}/2 local_rank {rank} node 0 host \S+ pid \d+ "
                                       r"device cpu attempt 0 runner \d+\.\d+\.\d+: sh -c ")
            body = lines[1].split(" ", 1)[1]
            self.assertRegex(body, rf"rank={rank} local={rank} world=2 lws=2 node=0 "
                                   r"master=127\.0\.0\.1:\d+ agent_store=True restart=0 omp=1 ompi=0")
            self.assertTrue(any(l.endswith(" partial-line-without-newline") for l in lines), lines)
        outcome = self.read_json(os.path.join(job, "outcome.json"))
        self.assertEqual((outcome["status"], outcome["exit_code"]), ("succeeded", 0))
        manifest = self.read_json(os.path.join(job, "manifest.json"))
        self.assertEqual(manifest["world_size"], 2)
        with open(os.path.join(job, "events.jsonl")) as f:
            events = [json.loads(l)["event"] for l in f]
        self.assertEqual(events.count("worker_started"), 2)
        self.assertIn("attempt_ended", events)
        with open(os.path.join(job, "job.yaml")) as f:
            self.assertIn("nproc_per_node: 2", f.read())

    def test_two_agents_under_mpirun_as_two_nodes(self):
        script = 'echo "rank=$RANK local=$LOCAL_RANK world=$WORLD_SIZE node=$NODE_RANK master=$MASTER_PORT"'
        cmd = self.mpirun_two_nodes(lambda host: self.runner_args(*self.sh_worker(script)))
        proc, _ = self.run_runner(cmd)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        job = self.job_dir()
        attempt = os.path.join(job, "attempt-0")
        ports = set()
        for rank in range(4):
            with open(os.path.join(attempt, f"rank-{rank}.log")) as f:
                f.readline()  # the runner's banner line
                body = f.readline().split(" ", 1)[1]
            node = rank // 2
            m = re.match(rf"rank={rank} local={rank % 2} world=4 node={node} master=(\d+)", body)
            self.assertTrue(m, body)
            ports.add(m.group(1))
        self.assertEqual(len(ports), 1, "workers disagree on the store port")
        manifest = self.read_json(os.path.join(job, "manifest.json"))
        self.assertEqual([n["host"] for n in manifest["nodes"]], ["nodeA", "nodeB"])
        for host in ("nodeA", "nodeB"):
            self.assertTrue(os.path.exists(os.path.join(attempt, f"runner-{host}.log")))

    def test_an_agent_that_cannot_go_on_ends_every_agent(self):
        # nodeB cannot create its job directory: without MPI_Abort, nodeA would wait for it in the
        # next collective for ever.
        def args(host):
            root = "/proc/no-such-dir" if host == "nodeB" else self.root
            return [RUNNER, "--log-root", root, "--job-name", "t", "--nproc-per-node", "1",
                    "launch.store_addr=127.0.0.1", *self.sh_worker("true")]
        proc, took = self.run_runner(self.mpirun_two_nodes(args), timeout=60)
        self.assertLess(took, 10)
        self.assertEqual(proc.returncode, 4, proc.stdout + proc.stderr)
        self.assertIn("job directory: cannot create '/proc/no-such-dir'", proc.stderr)
        self.assertIn(f"ending every agent of the job ({self.ABORT})", proc.stderr)

    def _two_nodes_then_sigterm_both(self, script):
        """Two agents (mpirun) x 1 worker running `script`; SIGTERM to agent 0, then 0.3 s later to
        agent 1, the way scancel's signals reach agents at slightly different moments."""
        cmd = self.mpirun_two_nodes(lambda host: [RUNNER, "--log-root", self.root, "--job-name", "t",
                                                  "--nproc-per-node", "1", "launch.store_addr=127.0.0.1",
                                                  *self.sh_worker(script)])
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=CLEAN_ENV, cwd=self.tmp.name)
        deadline = time.monotonic() + 20
        agents = []
        while len(agents) < 2 and time.monotonic() < deadline:
            agents = sorted(p for p in processes_with(self.marker) if self._is_agent(p))
            logs = [os.path.join(r, f) for r, _, fs in os.walk(self.root) for f in fs if f.startswith("rank-")] \
                if os.path.isdir(self.root) else []
            # The worker's own "ready" line (the banner line quotes the script, "ready" included).
            if len(agents) < 2 or len(logs) < 2 or \
                    not all(re.search(r"^\S+ ready$", read_text(l), re.M) for l in logs):
                agents = []
                time.sleep(0.05)
        self.assertEqual(len(agents), 2, "two agents with ready workers")
        os.kill(agents[0], signal.SIGTERM)
        # The scenario itself: the stop reaches the second agent a moment after the first.
        time.sleep(0.3)
        try:
            os.kill(agents[1], signal.SIGTERM)
        except ProcessLookupError:
            pass  # the stop has already ended it
        out, _ = proc.communicate(timeout=60)
        return proc.returncode, out

    @staticmethod
    def _is_agent(pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            return argv[0].endswith(b"/runner") and b"--exec-shim" not in argv
        except OSError:
            return False

    def test_a_stop_reaching_agents_at_different_moments_is_one_clean_stop(self):
        code, out = self._two_nodes_then_sigterm_both(
            'trap "sleep 1; echo saved; exit 10" TERM; echo ready; while :; do sleep 0.1; done')
        self.assertEqual(code, 10, out)
        self.assertNotIn("killing the workers now", out)
        self.assertNotIn("killed by signal 9", out)
        self.assertIn("received SIGTERM while already stopping", out)
        outcome = self.read_json(os.path.join(self.job_dir(), "outcome.json"))
        self.assertEqual((outcome["status"], outcome["exit_code"]), ("stopped", 10))

    def test_a_worker_failing_during_a_stop_is_a_failure(self):
        code, out = self._two_nodes_then_sigterm_both(
            'trap "if [ $RANK = 1 ]; then exit 4; else exit 10; fi" TERM; echo ready; while :; do sleep 0.1; done')
        self.assertEqual(code, 20, out)
        outcome = self.read_json(os.path.join(self.job_dir(), "outcome.json"))
        self.assertEqual(outcome["status"], "failed")
        self.assertIn("while stopping", outcome["first_failure"]["status"])

    def test_failing_worker_ends_the_job_with_its_rank_named(self):
        proc, took = self.run_runner(self.runner_args(*self.sh_worker(
            'if [ "$RANK" = 1 ]; then echo about to fail; exit 3; fi; sleep 60')))
        self.assertEqual(proc.returncode, 20, proc.stderr)
        self.assertLess(took, 10)
        outcome = self.read_json(os.path.join(self.job_dir(), "outcome.json"))
        self.assertEqual(outcome["status"], "failed")
        failure = outcome["first_failure"]
        self.assertEqual((failure["rank"], failure["exit_code"]), (1, 3))
        self.assertIn("about to fail", failure["last_lines"])
        self.assertIn("worker rank 1 exited with code 3", proc.stderr)

    def test_killed_worker_ends_the_job_with_the_signal_named(self):
        proc, took = self.run_runner(self.runner_args(*self.sh_worker(
            'if [ "$RANK" = 0 ]; then kill -9 $$; fi; sleep 60')))
        self.assertEqual(proc.returncode, 21, proc.stderr)
        self.assertLess(took, 10)
        failure = self.read_json(os.path.join(self.job_dir(), "outcome.json"))["first_failure"]
        self.assertEqual((failure["rank"], failure["signal"], failure["signal_name"]), (0, 9, "SIGKILL"))

    def test_failure_on_one_node_ends_the_other_node_within_seconds(self):
        script = 'if [ "$RANK" = 3 ]; then sleep 0.5; exit 3; fi; sleep 60'
        cmd = self.mpirun_two_nodes(lambda host: self.runner_args(*self.sh_worker(script)))
        proc, took = self.run_runner(cmd)
        self.assertLess(took, 10)
        self.assertEqual(proc.returncode, 20, proc.stdout + proc.stderr)
        outcome = self.read_json(os.path.join(self.job_dir(), "outcome.json"))
        failure = outcome["first_failure"]
        self.assertEqual((failure["rank"], failure["host"], failure["exit_code"]), (3, "nodeB", 3))
        codes = {a["host"]: a["code"] for a in outcome["agents"]}
        self.assertEqual(codes, {"nodeA": 12, "nodeB": 20})

    def test_sigterm_to_the_agent_stops_cleanly(self):
        args = self.runner_args(*self.sh_worker(
            'trap "echo got SIGTERM; exit 0" TERM; echo ready; while true; do sleep 0.1; done'))
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=CLEAN_ENV, cwd=self.tmp.name)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            logs = [os.path.join(r, f) for r, _, fs in os.walk(self.root) for f in fs if f.startswith("rank-")]
            if len(logs) == 2 and all(re.search(r"^\S+ ready$", read_text(p), re.M) for p in logs):
                break
            time.sleep(0.05)
        else:
            proc.kill()
            self.fail("workers did not start")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 10, err)
        job = self.job_dir()
        self.assertEqual(self.read_json(os.path.join(job, "outcome.json"))["status"], "stopped")
        with open(os.path.join(job, "attempt-0", "rank-0.log")) as f:
            self.assertIn("got SIGTERM", f.read())

    def test_worker_ignoring_sigterm_is_killed_after_the_grace_period(self):
        proc, took = self.run_runner(self.runner_args(
            "launch.grace_period_s=1",
            *self.sh_worker('trap "" TERM; if [ "$RANK" = 0 ]; then exit 5; fi; sleep 60')))
        self.assertEqual(proc.returncode, 20, proc.stderr)
        self.assertLess(took, 8)
        self.assertIn("SIGKILL", proc.stderr)

    def test_restart_after_a_failure(self):
        proc, _ = self.run_runner(self.runner_args(
            "launch.max_restarts=1",
            *self.sh_worker('echo attempt $TORCHELASTIC_RESTART_COUNT; '
                            'if [ "$TORCHELASTIC_RESTART_COUNT" = 0 ] && [ "$RANK" = 1 ]; then exit 1; fi')))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        job = self.job_dir()
        self.assertEqual(os.readlink(os.path.join(job, "current")), "attempt-1")
        with open(os.path.join(job, "attempt-1", "rank-1.log")) as f:
            self.assertIn("attempt 1", f.read())
        self.assertEqual(self.read_json(os.path.join(job, "attempt-0", "outcome.json"))["status"], "restarting")
        self.assertEqual(self.read_json(os.path.join(job, "outcome.json"))["status"], "succeeded")

    def test_missing_worker_command_is_reported(self):
        proc, _ = self.run_runner(self.runner_args("--", "no-such-program-" + self.marker))
        self.assertEqual(proc.returncode, 20, proc.stderr)
        failure = self.read_json(os.path.join(self.job_dir(), "outcome.json"))["first_failure"]
        self.assertEqual(failure["exit_code"], 127)
        self.assertTrue(any("cannot execute worker command" in l for l in failure["last_lines"]), failure)

    def test_killed_agent_takes_its_workers_along(self):
        # Each worker is a shell with a child of its own: both generations must go.
        grandchild = os.path.join(self.tmp.name, f"grandchild-{self.marker}.sh")
        with open(grandchild, "w") as f:
            f.write("sleep 60\n")
        args = self.runner_args(*self.sh_worker(f'sh {grandchild}; :'))
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=CLEAN_ENV, cwd=self.tmp.name)

        def grandchildren():
            found = []
            for pid in processes_with(grandchild):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if f.read().split(b"\0")[:2] == [b"sh", grandchild.encode()]:
                            found.append(pid)
                except OSError:
                    pass
            return found

        try:
            # /proc is read while processes fork and exec: take the answer of one stable look.
            deadline = time.monotonic() + 20
            found = grandchildren()
            while len(found) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
                found = grandchildren()
            self.assertEqual(len(found), 2, found)

            def sleeps_of_grandchildren():
                children = [int(p) for p in os.listdir("/proc") if p.isdigit() and self._parent(int(p)) in found]
                return children if {self._parent(p) for p in children} == set(found) else []

            sleeps = wait_for(sleeps_of_grandchildren, 10, f"each of the grandchildren {found} to start its sleep")
        finally:
            proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while (processes_with(self.marker) or any(os.path.exists(f"/proc/{p}") for p in sleeps)) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(processes_with(self.marker), [], "workers outlived a SIGKILLed agent")
        self.assertEqual([p for p in sleeps if os.path.exists(f"/proc/{p}")], [],
                         "a worker's children outlived a SIGKILLed agent")

    @staticmethod
    def _parent(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return -1

    def test_stock_pytorch_script_with_two_workers(self):
        proc, _ = self.run_runner(self.runner_args("--", "/usr/bin/python3",
                                                   os.path.join(HERE, "workers", "ddp_gloo.py"), self.marker),
                                  timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        attempt = os.path.join(self.job_dir(), "attempt-0")
        for rank in (0, 1):
            with open(os.path.join(attempt, f"rank-{rank}.log")) as f:
                self.assertIn(f"rank {rank}/2: all_reduce sum 3.0 (expected 3.0)", f.read())


class RunnerTcpTest(RunnerTest):
    """The two-agent cases with the agents meeting over TCP at node 0's store, no MPI."""
    LAUNCHER = ["/usr/bin/python3", os.path.join(HERE, "tcp_launch.py")]
    ABORT = "an abort through the job's store"


if __name__ == "__main__":
    unittest.main()
