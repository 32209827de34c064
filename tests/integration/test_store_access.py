"""Only the job reaches its store, with real processes in network namespaces (tests/integration/
netns.py): the runner runs a one-host job in the hub namespace with its store on the bridge's
address (launch.store_addr) and one more host allowed (launch.store_allow). A stock PyTorch client
from a namespace that is not the job's is refused and named in the runner's log, while the job's
workers go on through the store (ready, then init_process_group and all_reduce once the allowed
peer says go).

Needs root (ip netns); skipped without it. Environment: RUNNER_BIN. Every wait is bounded.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_helpers import clean_env, processes_with, read_text, wait_for  # noqa: E402
import netns  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")
HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "workers", "store_peer.py")
PYTHON = "/usr/bin/python3"


class StoreAccessTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(RUNNER, "RUNNER_BIN is not set")
        if os.geteuid() != 0:
            self.skipTest("needs root for network namespaces")
        netns.remove_stale()
        self.tmp = tempfile.TemporaryDirectory(prefix="runner-store-access-")
        self.addCleanup(self.tmp.cleanup)
        self.marker = "marker-" + uuid.uuid4().hex[:12]
        self.net = netns.Net("a", ["peer", "intruder"])
        self.addCleanup(self.net.close)  # runs after the job's processes are gone (LIFO)
        self.addCleanup(self.kill_leftovers)

    def kill_leftovers(self):
        for pid in processes_with(self.marker):
            try:
                os.kill(pid, 9)
            except OSError:
                pass

    def peer(self, who, *args, timeout=90):
        ns = self.net.peers[who][0]
        return subprocess.run(self.net.run_in(ns, [PYTHON, PEER, self.net.hub_addr, str(self.port),
                                                   *args]),
                              capture_output=True, text=True, timeout=timeout, env=clean_env())

    def test_a_client_off_the_job_is_refused_while_the_workers_go_on(self):
        root = os.path.join(self.tmp.name, "logs")
        env = clean_env()
        env["GLOO_SOCKET_IFNAME"] = "br0"  # the workers' gloo, inside the hub namespace
        peer_addr = self.net.peers["peer"][1]
        intruder_addr = self.net.peers["intruder"][1]
        runner = subprocess.Popen(
            self.net.run_in(self.net.hub, [
                RUNNER, "--log-root", root, "--job-name", "t", "--nproc-per-node", "2",
                f"launch.store_addr={self.net.hub_addr}", f"launch.store_allow={peer_addr}",
                "--", PYTHON, PEER, "worker", self.marker]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            cwd=self.tmp.name)
        self.addCleanup(lambda: runner.poll() is None and runner.kill())

        def manifest():
            found = [d for d in os.listdir(root) if d.startswith("t-")] if os.path.isdir(root) else []
            path = os.path.join(root, found[0], "manifest.json") if found else ""
            return path if path and os.path.exists(path) else None
        path = wait_for(manifest, 60, "the job's manifest.json")
        job = os.path.dirname(path)
        with open(path) as f:
            store = json.load(f)["store"]
        self.assertEqual(store["address"], self.net.hub_addr)
        self.port = store["port"]

        ready = self.peer("peer", "wait", "test/ready/0", "test/ready/1")
        self.assertEqual(ready.returncode, 0, ready.stdout + ready.stderr)

        intruder = self.peer("intruder", "intrude", timeout=60)
        self.assertEqual(intruder.returncode, 0,
                         "a client off the job used the store: " + intruder.stdout + intruder.stderr)
        self.assertIn("refused:", intruder.stdout)
        # A stock client too; judged by what it printed: PyTorch 1.13's watch thread may abort it
        # (std::system_error, SIGABRT) before it can say anything.
        stock = self.peer("intruder", "intrude-stock", timeout=60)
        self.assertNotIn("answered", stock.stdout, "a stock client off the job used the store")
        log = os.path.join(job, "attempt-0", [n for n in os.listdir(os.path.join(job, "attempt-0"))
                                              if n.startswith("runner-")][0])
        line = wait_for(lambda: next((l for l in read_text(log).splitlines()
                                      if f"refused a connection from {intruder_addr}:" in l), None),
                        10, lambda: "the refusal in the runner's log:\n" + read_text(log))
        self.assertIn("not one of the job's hosts", line)
        self.assertIn("launch.store_allow", line)

        go = self.peer("peer", "set", "test/go", "1")
        self.assertEqual(go.returncode, 0, go.stdout + go.stderr)
        out, _ = runner.communicate(timeout=120)
        self.assertEqual(runner.returncode, 0, out)
        for rank in (0, 1):
            self.assertIn(f"rank {rank}: all_reduce sum 3.0",
                          read_text(os.path.join(job, "attempt-0", f"rank-{rank}.log")))


if __name__ == "__main__":
    unittest.main()
