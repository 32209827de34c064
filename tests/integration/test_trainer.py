"""The bundled trainer under the runner, as users run it: real agents, real workers, real data
(Debian's Fashion-MNIST), kept short for CI. The full run to >= 0.90 accuracy is the quickstart.

Environment: RUNNER_BIN, TRAINER_BIN.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proc_helpers import DrainedProcess, clean_env, rank_progress, wait_for  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")
TRAINER = os.environ.get("TRAINER_BIN", "")
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLEAN_ENV = clean_env()
# The shared-memory segments' names (common/shm_name.h).
SEGMENT = re.compile(r"^runner-[0-9a-f]{16}-a\d+-n\d+(-p\d+-ns\d+)?$")
PID_NAMESPACE = os.stat("/proc/self/ns/pid").st_ino


class TrainerJobTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(RUNNER and TRAINER, "RUNNER_BIN and TRAINER_BIN must be set")
        self.tmp = tempfile.TemporaryDirectory(prefix="trainer-test-")
        self.root = os.path.join(self.tmp.name, "logs")

    def tearDown(self):
        self.tmp.cleanup()

    def run_job(self, *args, timeout=300):
        proc = subprocess.run([RUNNER, "--log-root", self.root, "--job-name", "t", *args],
                              capture_output=True, text=True, timeout=timeout, env=CLEAN_ENV,
                              cwd=self.tmp.name)
        dirs = os.listdir(self.root) if os.path.isdir(self.root) else []
        job = os.path.join(self.root, dirs[0]) if len(dirs) == 1 else None
        return proc, job

    def test_fashion_mnist_subset_on_two_workers(self):
        proc, job = self.run_job("--config", os.path.join(SOURCE, "configs", "fashion_mnist.yaml"),
                                 "train.data_limit=6000", "train.epochs=2", "train.log_every=10",
                                 "train.lr_schedule=constant", "train.warmup_steps=0")
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        attempt = os.path.join(job, "current")
        with open(os.path.join(attempt, "train.log")) as f:
            log = f.read()
        self.assertRegex(log, r"world_size=2 rank=0 backend=shm collective_timeout=1800s model=cnn")
        self.assertIn("effective batch = 64 per rank x 2 ranks x 1 accumulation steps = 128", log)
        progress = re.findall(r"epoch [12]/2 step (\d+)/92 loss ([\d.]+) lr [\d.]+ samples/s \d+ step [\d.]+ms "
                              r"\(data [\d.]+ fwd\+bwd [\d.]+ comm-wait [\d.]+ opt [\d.]+\) eta \S+", log)
        self.assertGreaterEqual(len(progress), 9, log)
        accuracy = float(re.search(r"epoch 2/2 eval: test loss [\d.]+ accuracy ([\d.]+) on 1000 samples", log).group(1))
        self.assertGreater(accuracy, 0.70)
        with open(os.path.join(attempt, "metrics.jsonl")) as f:
            metrics = [json.loads(line) for line in f]
        self.assertTrue(any("test_accuracy" in m for m in metrics))
        self.assertTrue(all(m["loss"] > 0 for m in metrics if "loss" in m))
        with open(os.path.join(attempt, "loss.svg")) as f:
            self.assertTrue(f.read().startswith("<svg"))
        # Rank 1 logs its own banner but no progress.
        with open(os.path.join(attempt, "rank-1.log")) as f:
            rank1 = f.read()
        self.assertIn("blas=OpenBLAS", rank1)
        self.assertNotIn("samples/s", rank1)

    def test_a_slowed_rank_is_named_the_straggler(self):
        # Rank 1 sleeps 20 ms in every forward: its compute time per step is ~20 ms over rank 0's.
        proc, job = self.run_job("--nproc-per-node", "2", "train.hidden_sizes=[32]",
                                 "train.synthetic_samples=2048", "train.batch_size=16",
                                 "train.max_steps=30", "train.log_every=10",
                                 "train.eval_every_epoch=false", "train.fault_inject=1:forward:0.02")
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        attempt = os.path.join(job, "current")
        with open(os.path.join(attempt, "train.log")) as f:
            log = f.read()
        slowest = re.findall(r"step (\d+)/30 .* eta \S+, slowest rank (\d) \(\+(\d+)% compute: "
                             r"([\d.]+) ms vs median ([\d.]+) ms\)", log)
        self.assertEqual([(s[0], s[1]) for s in slowest], [("10", "1"), ("20", "1"), ("30", "1")], log)
        warnings = re.findall(r"warning: rank (\d) is a straggler: compute ([\d.]+) ms per step over "
                              r"steps (\d+-\d+), \d+% above the median of [\d.]+ ms \(more than "
                              r"train.straggler_margin 20%\)", log)
        self.assertEqual([(w[0], w[2]) for w in warnings], [("1", "1-10"), ("1", "11-20"), ("1", "21-30")], log)
        # Warnings reach the console: rank 0's output is mirrored there.
        self.assertIn("warning: rank 1 is a straggler", proc.stdout + proc.stderr)
        with open(os.path.join(attempt, "metrics.jsonl")) as f:
            progress = [m for m in map(json.loads, f) if "rank_compute_ms" in m]
        self.assertEqual([m["step"] for m in progress], [10, 20, 30])
        for m in progress:
            self.assertEqual(len(m["rank_compute_ms"]), 2)
            self.assertEqual(len(m["rank_wait_ms"]), 2)
            self.assertGreater(m["rank_compute_ms"][1], m["rank_compute_ms"][0] + 15, m)
            # The fast rank waits for the slow one in the collectives.
            self.assertGreater(m["rank_wait_ms"][0], m["rank_wait_ms"][1], m)
            self.assertEqual(m["slowest_rank"], 1)
        with open(os.path.join(job, "events.jsonl")) as f:
            events = [e for e in map(json.loads, f) if e.get("event") == "straggler"]
        self.assertEqual([(e["rank"], e["step"]) for e in events], [(1, 10), (1, 20), (1, 30)])
        for e in events:
            self.assertGreater(e["compute_ms"], e["median_ms"])
            self.assertAlmostEqual(e["lag"], e["compute_ms"] / e["median_ms"] - 1, places=6)

    def test_diverging_loss_names_the_step(self):
        proc, job = self.run_job("--nproc-per-node", "2", "train.lr=100", "train.momentum=0",
                                 "train.hidden_sizes=[32]", "train.synthetic_samples=1024",
                                 "train.batch_size=32", "job.seed=7")
        self.assertEqual(proc.returncode, 20, proc.stderr[-3000:])
        with open(os.path.join(job, "outcome.json")) as f:
            failure = json.load(f)["first_failure"]
        self.assertEqual(failure["exit_code"], 6)
        self.assertTrue(any(re.search(r"training diverged: the loss became \S+ at step \d+", l)
                            for l in failure["last_lines"]), failure)

    def test_torchscript_model_from_python(self):
        path = os.path.join(self.tmp.name, "net.pt")
        # torch.jit.script reads the class's source, so the model lives in a file.
        script = os.path.join(self.tmp.name, "make_net.py")
        with open(script, "w") as f:
            f.write(f"""import torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(784, 10)
    def forward(self, x):
        return self.fc(x.flatten(1))
torch.jit.save(torch.jit.script(Net()), {path!r})
""")
        subprocess.run(["/usr/bin/python3", script], check=True, timeout=120)
        proc, job = self.run_job("--nproc-per-node", "2", "train.model=torchscript", f"train.model_path={path}",
                                 "train.max_steps=5", "train.synthetic_samples=1024")
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        with open(os.path.join(job, "current", "train.log")) as f:
            self.assertIn(f"model=torchscript {path} (7850 parameters)", f.read())

    def progress_of(self, job, rank):
        """Rank `rank`'s entry in the agent's progress files, or None."""
        return rank_progress(os.path.join(job, "attempt-0"), rank)

    def run_with_a_tiny_dev_shm(self, *overrides):
        """The MLP job in a mount namespace of its own whose /dev/shm is a 64 KiB tmpfs: room for
        the heartbeat pages, not for the MLP's 1.5 MiB segment."""
        if os.geteuid() != 0:
            self.skipTest("needs root for a mount namespace")
        script = 'mount -t tmpfs -o size=64k tmpfs /dev/shm && exec "$@"'
        return subprocess.run(
            ["unshare", "-m", "sh", "-c", script, "sh", RUNNER, "--log-root", self.root,
             "--job-name", "t", "--nproc-per-node", "2", "train.model=mlp",
             "train.hidden_sizes=[512,512]", "train.synthetic_samples=2048",
             "train.batch_size=16", "train.max_steps=5", "train.eval_every_epoch=false",
             *overrides],
            capture_output=True, text=True, timeout=180, env=CLEAN_ENV, cwd=self.tmp.name)

    def test_a_full_dev_shm_falls_back_to_gloo_with_a_warning(self):
        # No room in /dev/shm for the segment: the trainer says so and the whole job
        # all-reduces over gloo; nothing fails.
        proc = self.run_with_a_tiny_dev_shm()
        self.assertEqual(proc.returncode, 0, proc.stdout[-3000:] + proc.stderr[-3000:])
        self.assertRegex(proc.stderr, r"trainer: warning: machine 0: shared memory unavailable: "
                         r"cannot reserve \d+ KiB for shared-memory segment \S+: No space left "
                         r"on device; every rank all-reduces over gloo instead")
        job = os.path.join(self.root, os.listdir(self.root)[0])
        with open(os.path.join(job, "current", "train.log")) as f:
            self.assertIn("backend=gloo ", f.read())

    def test_a_full_dev_shm_with_allreduce_shm_is_an_error_naming_the_machine(self):
        # As above, but train.allreduce=shm asks for shared memory: every worker fails with the
        # environment error (4), naming the machine, its host, the rank and the way out.
        proc = self.run_with_a_tiny_dev_shm("train.allreduce=shm")
        self.assertEqual(proc.returncode, 20, proc.stdout[-3000:] + proc.stderr[-3000:])
        self.assertRegex(proc.stderr, r"trainer: environment error: train.allreduce=shm, but "
                         r"shared memory is unavailable on machine 0 \(host \S+, rank 0\): "
                         r"cannot reserve \d+ KiB for shared-memory segment \S+: No space left "
                         r"on device. Fix: give /dev/shm room \(docker --shm-size, mount -o "
                         r"remount,size=...\), or set train.allreduce=auto \(gloo where shared "
                         r"memory is unusable\) or gloo")
        self.assertNotIn("every rank all-reduces over gloo instead", proc.stderr)
        job = os.path.join(self.root, os.listdir(self.root)[0])
        with open(os.path.join(job, "outcome.json")) as f:
            self.assertEqual(json.load(f)["first_failure"]["exit_code"], 4)

    def segments(self):
        return {n for n in os.listdir("/dev/shm") if SEGMENT.match(n)}

    def start_held_job(self):
        """A job of 2 workers in shared memory whose rank 1 holds in the communicator's set-up
        (train.fault_inject's comm-setup), where the machine's segment is in /dev/shm and rank 1
        has not opened it. Returns the runner, its job directory and the segment's name."""
        before = self.segments()
        proc = DrainedProcess([RUNNER, "--log-root", self.root, "--job-name", "t",
                               "--nproc-per-node", "2", "train.allreduce=shm",
                               "train.hidden_sizes=[32]", "train.synthetic_samples=2048",
                               "train.batch_size=16", "train.eval_every_epoch=false",
                               "train.fault_inject=1:comm-setup:600"],
                              env=CLEAN_ENV, cwd=self.tmp.name)
        job = wait_for(lambda: (lambda d: os.path.join(self.root, d[0]) if d else None)(
            os.listdir(self.root) if os.path.isdir(self.root) else []), timeout=60, what="job")
        wait_for(lambda: (lambda p: p and p.get("phase") == "comm-setup")(
            self.progress_of(job, 1)), timeout=120, what="rank 1 held in comm-setup")
        mine = f"-p{proc.pid}-ns{PID_NAMESPACE}"  # its agent's (other jobs may run meanwhile)
        made = wait_for(lambda: {n for n in self.segments() - before if n.endswith(mine)},
                        timeout=30, what=lambda: f"a segment ending {mine}: {self.segments()}")
        self.assertEqual(len(made), 1, made)
        name = made.pop()
        self.assertEqual(os.stat(os.path.join("/dev/shm", name)).st_mode & 0o777, 0o600)
        return proc, job, name

    def test_a_worker_killed_before_the_machine_met_leaves_no_segment(self):
        # Rank 1 is killed while rank 0 waits for it to open the segment; rank 0 is stopped
        # before it handles signals. The agent removes the name when the attempt ends.
        proc, job, name = self.start_held_job()
        try:
            os.kill(self.progress_of(job, 1)["pid"], signal.SIGKILL)
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, 21, out[-3000:])
        self.assertNotIn(name, self.segments())

    def test_a_segment_left_by_a_killed_agent_goes_at_the_next_start(self):
        # The agent itself is SIGKILLed while rank 1 holds: its workers die with it and nobody is
        # left to remove the name. The next runner started on the machine removes it, and leaves
        # alone the segment of a job whose agent is alive (here: this test). Any runner started
        # meanwhile would sweep it too: ctest runs this test alone (RUN_SERIAL).
        proc, job, name = self.start_held_job()
        pids = [self.progress_of(job, r)["pid"] for r in (0, 1)]
        proc.kill()
        proc.communicate(timeout=60)
        wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids), timeout=60,
                 what="the workers to die with their agent")
        self.assertIn(name, self.segments())
        live = os.path.join("/dev/shm", f"runner-{'ab' * 8}-a0-n0-p{os.getpid()}-ns{PID_NAMESPACE}")
        os.close(os.open(live, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        try:
            again = subprocess.run([RUNNER, "--log-root", os.path.join(self.tmp.name, "again"),
                                    "--job-name", "u", "--nproc-per-node", "1", "--", "true"],
                                   capture_output=True, text=True, timeout=120, env=CLEAN_ENV,
                                   cwd=self.tmp.name)
            self.assertEqual(again.returncode, 0, again.stderr[-3000:])
            self.assertNotIn(name, self.segments())
            self.assertTrue(os.path.exists(live))
        finally:
            os.unlink(live)

    def test_a_worker_killed_mid_all_reduce_in_shared_memory_ends_the_job(self):
        # Rank 1 falls asleep in backward at step 3, so rank 0 waits for it in the shared-memory
        # all-reduce; then rank 1 is killed. The job ends as it does over gloo (21, rank 1 named)
        # and no segment is left in /dev/shm.
        before = self.segments()
        proc = DrainedProcess([RUNNER, "--log-root", self.root, "--job-name", "t",
                               "--nproc-per-node", "2", "train.allreduce=shm",
                               "train.hidden_sizes=[32]", "train.synthetic_samples=2048",
                               "train.batch_size=16", "train.eval_every_epoch=false",
                               "train.fault_inject=1:backward:600@3"],
                              env=CLEAN_ENV, cwd=self.tmp.name)
        try:
            job = wait_for(lambda: (lambda d: os.path.join(self.root, d[0]) if d else None)(
                os.listdir(self.root) if os.path.isdir(self.root) else []), timeout=60, what="job")
            asleep = wait_for(lambda: (lambda p: p if p and p.get("step") == 3 and
                                       p.get("phase") == "backward" else None)(
                self.progress_of(job, 1)), timeout=120, what="rank 1 asleep in backward")
            wait_for(lambda: (lambda p: p and p.get("phase") == "all-reduce")(
                self.progress_of(job, 0)), timeout=60, what="rank 0 waiting in the all-reduce")
            os.kill(asleep["pid"], signal.SIGKILL)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, 21, out[-3000:])
        with open(os.path.join(job, "outcome.json")) as f:
            failure = json.load(f)["first_failure"]
        self.assertEqual((failure["rank"], failure["signal_name"]), (1, "SIGKILL"), failure)
        with open(os.path.join(job, "current", "train.log")) as f:
            self.assertIn("backend=shm ", f.read())
        left = self.segments() - before
        self.assertEqual(left, set())

    def test_bad_torchscript_file_is_a_config_error(self):
        path = os.path.join(self.tmp.name, "broken.pt")
        with open(path, "w") as f:
            f.write("not a module")
        proc = subprocess.run([TRAINER, "train.model=torchscript", f"train.model_path={path}"],
                              capture_output=True, text=True, timeout=60, env=CLEAN_ENV)
        self.assertEqual(proc.returncode, 3, proc.stderr)
        self.assertIn(f"train.model_path: '{path}' does not load as a TorchScript module", proc.stderr)

    def test_missing_contract_variable_is_named(self):
        env = dict(CLEAN_ENV, RANK="0", WORLD_SIZE="2")
        proc = subprocess.run([TRAINER], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertIn("LOCAL_WORLD_SIZE is not set", proc.stderr)


if __name__ == "__main__":
    unittest.main()
