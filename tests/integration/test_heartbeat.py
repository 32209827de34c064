"""The trainer's progress heartbeats as the runner's watchdog reads them: the page-sized record
named by RUNNER_HEARTBEAT_FILE (layout in common/heartbeat.h), read here by a Python reader of
that layout while the real trainer binary runs: standalone, and as two ranks over a real store
(tests' store_host, the runner's own store server).

Environment: TRAINER_BIN, STORE_HOST_BIN.
"""
import os
import select
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proc_helpers import clean_env, wait_for  # noqa: E402

TRAINER = os.environ.get("TRAINER_BIN", "")
STORE_HOST = os.environ.get("STORE_HOST_BIN", "")
PAGE = 4096
# magic, version, pid, seq, beats, mono_ns, step, collective, in_collective, bucket, buckets, phase
RECORD = struct.Struct("<8sIiQQQqqiii28s")
JOB = ["train.model=mlp", "train.hidden_sizes=[64]", "train.synthetic_samples=4096",
       "train.batch_size=16", "train.eval_every_epoch=false", "train.log_every=5", "job.seed=3"]


def collectives(steps, world=2):
    """Collectives issued after `steps` steps of JOB: the broadcast, then per step its one
    gradient bucket (none in a world of one) and the agreement, and every train.log_every=5 steps
    the timing exchange."""
    return 1 + steps * (2 if world > 1 else 1) + steps // 5


def create_heartbeat(path):
    """What common::CreateHeartbeat does: a page of zeroes, mode 0600."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.ftruncate(fd, PAGE)
    os.close(fd)


def read_heartbeat(path):
    """The record as a dict, or None before the worker opened it (no magic) or when no consistent
    read came (seq odd or changed under the read)."""
    with open(path, "rb") as f:
        for _ in range(8):
            data = f.read(RECORD.size)
            f.seek(16)
            seq_after = struct.unpack("<Q", f.read(8))[0]
            f.seek(0)
            fields = RECORD.unpack(data)
            if fields[0] != b"RNRHB001":
                return None
            if fields[3] % 2 or fields[3] != seq_after:
                continue
            return {"pid": fields[2], "beats": fields[4], "step": fields[6],
                    "collective": fields[7], "in_collective": bool(fields[8]),
                    "bucket": fields[9], "buckets": fields[10],
                    "phase": fields[11].rstrip(b"\0").decode()}
    return None


class HeartbeatTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(TRAINER and STORE_HOST, "TRAINER_BIN and STORE_HOST_BIN must be set")
        self.tmp = tempfile.TemporaryDirectory(prefix="heartbeat-test-")
        self.procs = []

    def tearDown(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe:
                    pipe.close()
        self.tmp.cleanup()

    def start(self, name, args, env):
        log = open(os.path.join(self.tmp.name, name + ".log"), "w")
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=self.tmp.name)
        log.close()
        self.procs.append(proc)
        return proc

    def log_of(self, name):
        with open(os.path.join(self.tmp.name, name + ".log")) as f:
            return f.read()

    def trainer(self, name, overrides, contract=None):
        path = os.path.join(self.tmp.name, name + ".hb")
        create_heartbeat(path)
        env = dict(clean_env(), OMP_NUM_THREADS="1", RUNNER_HEARTBEAT_FILE=path, **(contract or {}))
        return self.start(name, [TRAINER, *JOB, *overrides], env), path

    def store(self):
        proc = subprocess.Popen([STORE_HOST, "127.0.0.1"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        self.assertTrue(ready, "store_host printed no port within 10 s")
        line = proc.stdout.readline().decode().strip()
        self.assertTrue(line.startswith("port="), line)
        return int(line[len("port="):])

    def two_ranks(self, overrides, extra_env=None):
        port = self.store()
        ranks = []
        for rank in range(2):
            contract = {"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
                        "LOCAL_WORLD_SIZE": "2", "NODE_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(port), "TORCHELASTIC_RESTART_COUNT": "0",
                        **(extra_env or {})}
            ranks.append(self.trainer("rank-%d" % rank, overrides, contract))
        return ranks

    def test_standalone_trainer_publishes_its_phases_and_steps(self):
        proc, path = self.trainer("solo", ["train.max_steps=200"])
        seen = []
        while proc.poll() is None:
            time.sleep(0.001)
            h = read_heartbeat(path)
            if h is not None and (not seen or h["beats"] != seen[-1]["beats"]):
                seen.append(h)
        self.assertEqual(proc.returncode, 0, self.log_of("solo"))
        final = read_heartbeat(path)
        self.assertEqual(final["pid"], proc.pid)
        self.assertEqual(final["step"], 200)
        self.assertEqual(final["collective"], collectives(200, world=1))
        # The last word: its work is saved and it is on its way out (the runner spares such a
        # worker a second SIGTERM's SIGKILL).
        self.assertEqual((final["phase"], final["in_collective"]), ("exiting", False))
        steps = [h["step"] for h in seen]
        self.assertEqual(steps, sorted(steps), "steps went backwards")
        self.assertGreater(len(set(steps)), 5, "the step did not advance while reading")
        beats = [h["beats"] for h in seen]
        self.assertEqual(beats, sorted(beats))
        known = {"start", "init", "data", "forward", "backward", "optimizer", "agree", "timing",
                 "checkpoint", "exiting"}
        self.assertLessEqual({h["phase"] for h in seen}, known)

    def wait_for_record(self, path, want, proc_names):
        """Waits until the record at `path` matches every field of `want`."""
        def matches():
            h = read_heartbeat(path)
            return h is not None and all(h[k] == v for k, v in want.items())
        for name, proc in zip(proc_names, self.procs[-len(proc_names):]):
            self.assertIsNone(proc.poll(), "%s ended early: %s" % (name, self.log_of(name)))
        wait_for(matches, 60, lambda: "%s in %s, got %s" % (want, path, read_heartbeat(path)))

    def test_an_injected_hang_shows_in_the_phase_it_names(self):
        # The trainer names the phase before it sleeps there: a hang at step 3 (3 steps done).
        for phase in ("data", "forward", "backward", "optimizer", "evaluation"):
            with self.subTest(phase=phase):
                # 160 samples of batch 16: the epoch (and its evaluation) ends after step 10.
                at = 10 if phase == "evaluation" else 3
                proc, path = self.trainer(phase, ["train.synthetic_samples=160",
                                                  "train.eval_every_epoch=true",
                                                  "train.fault_inject=0:%s:600@%d" % (phase, at)])
                self.wait_for_record(path, {"phase": phase, "step": at, "in_collective": False},
                                     [phase])
                proc.kill()

    def test_a_hung_rank_and_the_rank_waiting_for_it(self):
        cases = [
            # Rank 1 stuck in forward of step 4: rank 0 already launched that step's bucket and
            # waits in it; rank 1's last collective is the agreement of step 3.
            ("1:forward:600@3", {}, [
                {"phase": "all-reduce", "step": 3, "in_collective": True,
                 "collective": collectives(3) + 1, "bucket": 1, "buckets": 1},
                {"phase": "forward", "step": 3, "in_collective": False,
                 "collective": collectives(3)}]),
            # Rank 0 stuck writing the final checkpoint; rank 1 waits for it in "checkpoint".
            ("0:checkpoint:600@20", {"RUNNER_JOB_DIR": "job"}, [
                {"phase": "checkpoint", "step": 20, "in_collective": False,
                 "collective": collectives(20)},
                {"phase": "checkpoint", "step": 20, "in_collective": True,
                 "collective": collectives(20) + 1}]),
        ]
        for fault, extra, want in cases:
            with self.subTest(fault=fault):
                os.makedirs(os.path.join(self.tmp.name, "job"), exist_ok=True)
                ranks = self.two_ranks(["train.max_steps=20", "train.fault_inject=" + fault],
                                       extra)
                for rank, (proc, path) in enumerate(ranks):
                    self.wait_for_record(path, want[rank], ["rank-0", "rank-1"])
                for proc, _ in ranks:
                    proc.kill()

    def test_two_ranks_number_the_same_collectives(self):
        (p0, hb0), (p1, hb1) = self.two_ranks(["train.max_steps=20"])
        for name, proc in (("rank-0", p0), ("rank-1", p1)):
            self.assertEqual(proc.wait(timeout=120), 0, self.log_of(name))
        r0, r1 = read_heartbeat(hb0), read_heartbeat(hb1)
        self.assertEqual(r0["step"], 20)
        self.assertEqual(r1["step"], 20)
        self.assertEqual(r0["collective"], collectives(20))
        self.assertEqual(r1["collective"], r0["collective"])


if __name__ == "__main__":
    unittest.main()
