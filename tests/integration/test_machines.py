"""Several machines without Slurm or mpirun: one runner per network namespace (tests/integration/
netns.py), each with its own address on a private bridge, started by hand the torchrun way
(NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT) with node 0's address as the master. Nothing but
the bridge joins them: the store, the agents' control plane and the workers' Gloo all cross it,
on the interface each agent picked on its route to the store (GLOO_SOCKET_IFNAME is not set).

Needs root (ip netns); skipped without it. Environment: RUNNER_BIN, TRAINER_BIN. Every wait is
bounded.
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_helpers import clean_env, processes_with, wait_for  # noqa: E402
import netns  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")
HERE = os.path.dirname(os.path.abspath(__file__))
DDP = os.path.join(HERE, "workers", "ddp_gloo.py")
SMOKE = os.path.join(HERE, "..", "..", "configs", "smoke.yaml")
PYTHON = "/usr/bin/python3"
PORT = 29517
CLEAN_ENV = clean_env("MASTER_", "PET_", "GLOO_", "NCCL_")


class MachinesTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(RUNNER, "RUNNER_BIN is not set")
        if os.geteuid() != 0:
            self.skipTest("needs root for network namespaces")
        netns.remove_stale()
        self.tmp = tempfile.TemporaryDirectory(prefix="runner-machines-")
        self.addCleanup(self.tmp.cleanup)
        self.root = os.path.join(self.tmp.name, "logs")
        self.marker = "marker-" + uuid.uuid4().hex[:12]
        self.net = netns.Net("m", ["m0", "m1", "m2"])
        self.addCleanup(self.net.close)  # after the processes are gone (cleanups run LIFO)
        self.procs = []
        self.addCleanup(self.end_processes)

    def end_processes(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
        for pid in processes_with(self.marker):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        wait_for(lambda: not processes_with(self.marker), 10, "the job's processes to end")

    # --- helpers -------------------------------------------------------------------------------

    def address(self, machine):
        return self.net.peers[machine][1]

    def start(self, node, *args, nnodes=2, env=None):
        """The runner of node `node` on machine m<node>, master m0."""
        machine = f"m{node}"
        environment = dict(CLEAN_ENV, RUNNER_HOSTNAME=machine, NNODES=str(nnodes),
                           NODE_RANK=str(node), MASTER_ADDR=self.address("m0"),
                           MASTER_PORT=str(PORT), **(env or {}))
        cmd = [RUNNER, "--log-root", self.root, "--job-name", "t",
               "launch.rendezvous_timeout_s=60", *args]
        proc = subprocess.Popen(self.net.run_in(self.net.peers[machine][0], cmd), env=environment,
                                cwd=self.tmp.name, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        return proc

    def ddp(self, nproc=2):
        return ["--nproc-per-node", str(nproc), "--", PYTHON, DDP, self.marker]

    def sh(self, script):
        return ["--nproc-per-node", "1", "--", "sh", "-c", script, self.marker]

    def finish(self, proc, timeout=120):
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out

    def job_file(self, name):
        dirs = glob.glob(os.path.join(self.root, "t-*"))
        self.assertEqual(len(dirs), 1, dirs)
        with open(os.path.join(dirs[0], name)) as f:
            return json.load(f)

    def wait_for_workers(self, n):
        logs = os.path.join(self.root, "t-*", "attempt-0", "rank-*.log")
        wait_for(lambda: len(glob.glob(logs)) >= n, 60, f"{n} workers to start")

    def assert_all_succeed(self, procs):
        for proc in procs:
            code, out = self.finish(proc)
            self.assertEqual(code, 0, out)

    # --- tests ---------------------------------------------------------------------------------

    def test_two_machines_run_a_stock_pytorch_script_on_the_interface_to_the_store(self):
        procs = [self.start(n, *self.ddp()) for n in (0, 1)]
        self.assert_all_succeed(procs)
        manifest = self.job_file("manifest.json")
        self.assertEqual(manifest["store"], {"address": self.address("m0"), "port": PORT})
        for agent in manifest["agents"]:
            machine = agent["host"]
            self.assertEqual(agent["network"], {
                "interface": "eth0", "address": self.address(machine),
                "chosen": f"on the route to the store {self.address('m0')}:{PORT}"})
        runner_log = glob.glob(os.path.join(self.root, "t-*", "attempt-0", "runner-m1.log"))
        with open(runner_log[0]) as f:
            self.assertIn(f"workers' network: eth0 ({self.address('m1')}, on the route to the "
                          f"store {self.address('m0')}:{PORT}) GLOO_SOCKET_IFNAME=eth0 "
                          "NCCL_SOCKET_IFNAME==eth0", f.read())
        self.assertEqual(self.job_file("outcome.json")["status"], "succeeded")

    def test_the_bundled_trainer_on_two_machines(self):
        if not os.environ.get("TRAINER_BIN"):
            self.skipTest("TRAINER_BIN is not set")
        procs = [self.start(n, "--config", SMOKE, "--nproc-per-node", "1") for n in (0, 1)]
        self.assert_all_succeed(procs)
        self.assertEqual(self.job_file("outcome.json")["status"], "succeeded")

    def test_three_machines_one_starting_20_s_late(self):
        procs = [self.start(n, *self.ddp(1), nnodes=3) for n in (0, 1)]
        wait_for(self.store_is_up, 30, "node 0 to host the store")
        time.sleep(20)  # the scenario: a machine that boots 20 s after the others
        procs.append(self.start(2, *self.ddp(1), nnodes=3))
        self.assert_all_succeed(procs)
        outcome = self.job_file("outcome.json")
        self.assertEqual(outcome["status"], "succeeded")
        self.assertEqual([a["host"] for a in outcome["agents"]], ["m0", "m1", "m2"])

    def store_is_up(self):
        """Whether node 0's store accepts connections from machine m1."""
        probe = subprocess.run(self.net.run_in(self.net.peers["m1"][0], [
            PYTHON, "-c", f"import socket; socket.create_connection(('{self.address('m0')}', "
            f"{PORT}), 2)"]), capture_output=True, text=True)
        return probe.returncode == 0

    def test_a_worker_killed_on_one_machine_ends_both_naming_it(self):
        p0 = self.start(0, *self.sh("sleep 60"))
        p1 = self.start(1, *self.sh("sleep 1; kill -9 $$"))
        start = time.monotonic()
        code1, out1 = self.finish(p1)
        code0, out0 = self.finish(p0)
        self.assertLess(time.monotonic() - start, 20)
        self.assertEqual((code0, code1), (21, 21), out0 + out1)
        failure = self.job_file("outcome.json")["first_failure"]
        self.assertEqual((failure["host"], failure["rank"], failure["signal_name"]),
                         ("m1", 1, "SIGKILL"))

    def test_an_agent_killed_on_one_machine_is_named_by_the_others(self):
        procs = [self.start(n, *self.sh("sleep 60"), nnodes=3) for n in (0, 1, 2)]
        self.wait_for_workers(3)
        procs[2].kill()
        start = time.monotonic()
        for proc in procs[:2]:
            code, out = self.finish(proc)
            self.assertEqual(code, 5, out)
            self.assertIn(f"node rank 2 (host m2, pid {procs[2].pid}) is gone: its agent's "
                          "connection to the job's store closed without a goodbye", out)
        self.assertLess(time.monotonic() - start, 20)

    def test_a_wrong_interface_name_on_one_machine_ends_every_agent_naming_it(self):
        p0 = self.start(0, *self.sh("sleep 60"))
        p1 = self.start(1, *self.sh("true"), env={"GLOO_SOCKET_IFNAME": "eht0"})
        code1, out1 = self.finish(p1)
        code0, out0 = self.finish(p0)
        self.assertEqual((code0, code1), (4, 4), out0 + out1)
        self.assertIn("GLOO_SOCKET_IFNAME=eht0: no interface 'eht0' on m1 (interfaces on m1: "
                      "eth0, lo)", out1)
        self.assertIn("node rank 1 (host m1) ended the job", out0)


if __name__ == "__main__":
    unittest.main()
