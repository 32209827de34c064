"""Agents started by hand on each machine, the torchrun way (NNODES, NODE_RANK, MASTER_ADDR,
MASTER_PORT, or --nnodes/--node-rank/--master), meeting over TCP at node 0's store: real runner
processes on this host acting as machines through RUNNER_HOSTNAME, with MASTER_ADDR=127.0.0.1.

Environment: RUNNER_BIN (the runner), TRAINER_BIN (for the trainer case). Every wait is bounded.
"""
import glob
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
HERE = os.path.dirname(os.path.abspath(__file__))
DDP = os.path.join(HERE, "workers", "ddp_gloo.py")
SMOKE = os.path.join(HERE, "..", "..", "configs", "smoke.yaml")
CLEAN_ENV = clean_env("MASTER_", "PET_")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TcpTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(RUNNER, "RUNNER_BIN is not set")
        self.tmp = tempfile.TemporaryDirectory(prefix="runner-tcp-")
        self.root = os.path.join(self.tmp.name, "logs")
        self.marker = "marker-" + uuid.uuid4().hex[:12]
        self.port = free_port()
        self.procs = []

    def tearDown(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
        wait_for(lambda: not processes_with(self.marker), 10, "the job's processes to end")
        self.tmp.cleanup()

    # --- helpers -------------------------------------------------------------------------------

    def start(self, node, *args, nnodes=2, host=None, flags=False, timeout_s=30):
        """Starts the runner of `node` as machine `host` (default node<N>)."""
        env = dict(CLEAN_ENV, RUNNER_HOSTNAME=host or f"node{node}")
        launch = [f"--nnodes={nnodes}", f"--node-rank={node}", f"--master=127.0.0.1:{self.port}"]
        if not flags:
            env.update(NNODES=str(nnodes), NODE_RANK=str(node), MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=str(self.port))
            launch = []
        cmd = [RUNNER, *launch, "--log-root", self.root, "--job-name", "t",
               f"launch.rendezvous_timeout_s={timeout_s}", *args]
        proc = subprocess.Popen(cmd, env=env, cwd=self.tmp.name, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        return proc

    def sh(self, script):
        return ["--nproc-per-node", "1", "--", "sh", "-c", script, self.marker]

    def finish(self, proc, timeout=60):
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out

    def rank_logs(self):
        import glob
        return glob.glob(os.path.join(self.root, "t-*", "attempt-0", "rank-*.log"))

    def wait_for_workers(self, n):
        wait_for(lambda: len(self.rank_logs()) >= n, 20, f"{n} workers to start")

    def outcome(self):
        dirs = [d for d in os.listdir(self.root) if d.startswith("t-")]
        self.assertEqual(len(dirs), 1, dirs)
        with open(os.path.join(self.root, dirs[0], "outcome.json")) as f:
            return json.load(f)

    # --- tests ---------------------------------------------------------------------------------

    def test_two_machines_run_a_stock_pytorch_script(self):
        procs = [self.start(n, "--nproc-per-node", "2", "--", "/usr/bin/python3", DDP, self.marker)
                 for n in (0, 1)]
        outs = []
        for proc in procs:
            code, out = self.finish(proc)
            self.assertEqual(code, 0, out)
            outs.append(out)
        self.assertIn("rank 0/4: all_reduce sum 10.0 (expected 10.0)", outs[0])
        outcome = self.outcome()
        self.assertEqual(outcome["status"], "succeeded")
        self.assertEqual([a["host"] for a in outcome["agents"]], ["node0", "node1"])
        manifest = json.loads(read_text(os.path.join(self.root, os.listdir(self.root)[0],
                                                     "manifest.json")))
        self.assertEqual(manifest["scheduler"], "torchrun")
        self.assertEqual(manifest["store"], {"address": "127.0.0.1", "port": self.port})

    def test_three_machines_given_by_flags_one_starting_late(self):
        procs = [self.start(n, *self.sh("exit 0"), nnodes=3, flags=True) for n in (0, 1)]
        # The third machine comes once the others are waiting for it at the rendezvous.
        def hosting():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_for(hosting, 10, "node 0 to host the store")
        time.sleep(2)  # the scenario: a machine that starts late
        procs.append(self.start(2, *self.sh("exit 0"), nnodes=3, flags=True))
        for proc in procs:
            code, out = self.finish(proc)
            self.assertEqual(code, 0, out)
        self.assertEqual(len(self.outcome()["agents"]), 3)

    def test_the_bundled_trainer_on_two_machines(self):
        if not os.environ.get("TRAINER_BIN"):
            self.skipTest("TRAINER_BIN is not set")
        procs = [self.start(n, "--config", SMOKE, "--nproc-per-node", "1") for n in (0, 1)]
        for proc in procs:
            code, out = self.finish(proc, timeout=120)
            self.assertEqual(code, 0, out)
        self.assertEqual(self.outcome()["status"], "succeeded")

    def two_machines_of_two_workers(self, *overrides):
        if not os.environ.get("TRAINER_BIN"):
            self.skipTest("TRAINER_BIN is not set")
        procs = [self.start(n, "--config", SMOKE, "--nproc-per-node", "2", *overrides)
                 for n in (0, 1)]
        for proc in procs:
            code, out = self.finish(proc, timeout=120)
            self.assertEqual(code, 0, out)
        self.assertEqual(self.outcome()["status"], "succeeded")
        dirs = [d for d in os.listdir(self.root) if d.startswith("t-")]
        with open(os.path.join(self.root, dirs[0], "attempt-0", "train.log")) as f:
            return f.read()

    def test_two_machines_of_two_workers_sum_in_shared_memory_and_between_leaders(self):
        log = self.two_machines_of_two_workers("train.allreduce=shm")
        self.assertIn("world_size=4 rank=0 backend=shm+gloo ", log)

    def test_gradients_cross_between_machines_as_bf16(self):
        log = self.two_machines_of_two_workers("train.allreduce=shm",
                                               "train.gradient_compression=bf16")
        self.assertIn("world_size=4 rank=0 backend=shm+gloo/bf16 ", log)

    def test_a_worker_killed_on_one_machine_ends_both_naming_it(self):
        p0 = self.start(0, *self.sh("sleep 60"))
        p1 = self.start(1, *self.sh("sleep 1; kill -9 $$"))
        start = time.monotonic()
        code1, out1 = self.finish(p1)
        code0, out0 = self.finish(p0)
        self.assertLess(time.monotonic() - start, 15)
        self.assertEqual((code0, code1), (21, 21), out0 + out1)
        failure = self.outcome()["first_failure"]
        self.assertEqual((failure["host"], failure["rank"], failure["signal_name"]),
                         ("node1", 1, "SIGKILL"))

    def test_an_agent_killed_on_one_machine_is_named_by_the_other(self):
        p0 = self.start(0, *self.sh("sleep 60"))
        p1 = self.start(1, *self.sh("sleep 60"))
        self.wait_for_workers(2)
        p1.kill()
        start = time.monotonic()
        code0, out0 = self.finish(p0)
        self.assertLess(time.monotonic() - start, 15)
        self.assertEqual(code0, 5, out0)
        self.assertIn(f"node rank 1 (host node1, pid {p1.pid}) is gone: its agent's connection "
                      "to the job's store closed without a goodbye", out0)
        # The agent ends without destructors (the abort), its log file says why all the same.
        [log] = glob.glob(os.path.join(self.root, "t-*", "attempt-0", "runner-node0.log"))
        with open(log) as f:
            text = f.read()
        self.assertIn(f"node rank 1 (host node1, pid {p1.pid}) is gone", text)
        self.assertIn("ending every agent of the job", text)

    def test_node_0_killed_is_named_by_the_other(self):
        p0 = self.start(0, *self.sh("sleep 60"))
        p1 = self.start(1, *self.sh("sleep 60"))
        self.wait_for_workers(2)
        p0.kill()
        code1, out1 = self.finish(p1)
        self.assertEqual(code1, 5, out1)
        self.assertIn(f"lost the job's store at MASTER_ADDR:MASTER_PORT = 127.0.0.1:{self.port}",
                      out1)
        # The agent ends without destructors (the abort), its log file says why all the same.
        [log] = glob.glob(os.path.join(self.root, "t-*", "attempt-0", "runner-node1.log"))
        with open(log) as f:
            text = f.read()
        self.assertIn("lost the job's store", text)
        self.assertIn("ending every agent of the job", text)

    def test_an_agent_that_cannot_go_on_ends_every_agent_with_its_code(self):
        p0 = self.start(0, *self.sh("sleep 60"))
        p1 = self.start(1, "job.log_root=/proc/no-such-dir", *self.sh("true"))
        start = time.monotonic()
        code1, out1 = self.finish(p1)
        code0, out0 = self.finish(p0)
        self.assertLess(time.monotonic() - start, 15)
        self.assertEqual((code0, code1), (4, 4), out0 + out1)
        self.assertIn("ending every agent of the job (an abort through the job's store)", out1)
        self.assertIn("node rank 1 (host node1) ended the job: job directory: cannot create "
                      "'/proc/no-such-dir", out0)

    def test_a_failure_restarts_every_machine_into_the_next_attempt(self):
        script = ('echo attempt $TORCHELASTIC_RESTART_COUNT; '
                  'if [ "$TORCHELASTIC_RESTART_COUNT" = 0 ] && [ "$RANK" = 1 ]; then exit 1; fi')
        procs = [self.start(n, "launch.max_restarts=1", *self.sh(script)) for n in (0, 1)]
        for proc in procs:
            code, out = self.finish(proc)
            self.assertEqual(code, 0, out)
        job = os.path.join(self.root, os.listdir(self.root)[0])
        self.assertEqual(os.readlink(os.path.join(job, "current")), "attempt-1")
        with open(os.path.join(job, "attempt-0", "outcome.json")) as f:
            first = json.load(f)
        self.assertEqual((first["status"], first["first_failure"]["rank"],
                          first["first_failure"]["host"]), ("restarting", 1, "node1"))
        for rank in (0, 1):
            self.assertIn("attempt 1", read_text(os.path.join(job, "attempt-1", f"rank-{rank}.log")))
        self.assertEqual(self.outcome()["status"], "succeeded")

    # --- the rendezvous' failure modes ---------------------------------------------------------

    def test_an_unreachable_master_is_named(self):
        code, out = self.finish(self.start(1, *self.sh("exit 0"), timeout_s=1))
        self.assertEqual(code, 5, out)
        self.assertIn("runner: rendezvous error: cannot reach the job's store at "
                      f"MASTER_ADDR:MASTER_PORT = 127.0.0.1:{self.port}: Connection refused", out)

    def test_a_missing_node_is_named(self):
        procs = [self.start(n, *self.sh("exit 0"), nnodes=3, timeout_s=2) for n in (0, 2)]
        for proc in procs:
            code, out = self.finish(proc)
            self.assertEqual(code, 5, out)
            self.assertIn("timed out after 2 s (launch.rendezvous_timeout_s): node rank(s) 1 of "
                          "NNODES=3 never arrived (here: 0 on node0, 2 on node2)", out)

    def test_two_agents_with_the_same_node_rank(self):
        p0 = self.start(0, *self.sh("sleep 2"))
        p1 = self.start(1, *self.sh("sleep 2"))
        self.wait_for_workers(2)
        code, out = self.finish(self.start(1, *self.sh("exit 0"), host="twin"))
        self.assertEqual(code, 4, out)
        self.assertIn("NODE_RANK=1 is taken: host node1 (pid", out)
        for proc in (p0, p1):
            self.assertEqual(self.finish(proc)[0], 0)

    def test_node_counts_that_disagree(self):
        p0 = self.start(0, *self.sh("exit 0"))
        code1, out1 = self.finish(self.start(1, *self.sh("exit 0"), nnodes=3))
        code0, out0 = self.finish(p0)
        self.assertEqual((code0, code1), (4, 4), out0 + out1)
        text = ("NNODES disagree: node rank 1 (host node1) has NNODES=3 but node rank 0 (host "
                "node0) has NNODES=2")
        self.assertIn(text, out0)
        self.assertIn(text, out1)

    def test_a_port_in_use_on_the_master(self):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", self.port))
            holder.listen()
            code, out = self.finish(self.start(0, *self.sh("exit 0")))
        self.assertEqual(code, 5, out)
        self.assertIn(f"MASTER_ADDR:MASTER_PORT = 127.0.0.1:{self.port} (127.0.0.1) is already in "
                      "use on host node0", out)

    def test_dry_run_names_where_each_value_came_from(self):
        env = dict(CLEAN_ENV, RUNNER_HOSTNAME="node1", NNODES="2", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT="29500")
        out = subprocess.run([RUNNER, "--dry-run", "--node-rank", "1"], env=env, text=True,
                             capture_output=True, timeout=30, check=True).stdout
        self.assertIn("this node     1 = node1   (--node-rank; hostname node1)", out)
        self.assertIn("agents        2 (per node: 1,1)   (NNODES,", out)
        self.assertIn("master        127.0.0.1   (MASTER_ADDR;", out)
        self.assertIn("rendezvous    TCP at 127.0.0.1:29500, node 0 hosts it", out)
        self.assertIn("network       lo (127.0.0.1) GLOO_SOCKET_IFNAME=lo NCCL_SOCKET_IFNAME==lo   "
                      "(on the route to the store 127.0.0.1:29500)", out)
        env["GLOO_SOCKET_IFNAME"] = "^lo"
        out = subprocess.run([RUNNER, "--dry-run", "--node-rank", "1"], env=env, text=True,
                             capture_output=True, timeout=30, check=True).stdout
        self.assertIn("warning: GLOO_SOCKET_IFNAME=^lo: Gloo takes interface names", out)


if __name__ == "__main__":
    unittest.main()
