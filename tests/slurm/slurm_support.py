"""What the Slurm template scenarios (test_slurm.py) share: the cluster's client environment,
scontrol's view of a job, a submitted job's files and bounded waits on them, and the test case base
class that submits templates and cleans up after each test.

Environment: RUNNER_BIN (the runner executable), RUNNER_SOURCE_DIR (the checkout), SLURMTEST_*
(which cluster, as for tests/slurm/cluster).
"""
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proc_helpers import processes_with, read_text  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")
SOURCE = os.environ.get("RUNNER_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
CLUSTER = os.path.join(SOURCE, "tests", "slurm", "cluster")
TEMPLATES = os.path.join(SOURCE, "slurm")
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
            "DEADLINE", "PREEMPTED"}
SKIP = 77  # ctest SKIP_RETURN_CODE of the trainer test


@functools.lru_cache(maxsize=None)
def cluster_env():
    """The variables a client needs, from `tests/slurm/cluster env` (asked once)."""
    proc = subprocess.run([CLUSTER, "env"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise AssertionError(
            "no Slurm test cluster is up (tests/slurm/cluster env: %s). The slurm tests need the "
            "slurm.cluster_up fixture (ctest -L slurm runs it), as root." % proc.stderr.strip())
    env = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"export (\w+)=(.*)$", line)
        if m:
            env[m.group(1)] = m.group(2)
    return env


def client_env(extra):
    """This process's environment without any scheduler's or launcher's variables (the tests
    may run inside a Slurm job or under mpirun), plus the cluster's and the test's."""
    drop = ("SLURM_", "SBATCH_", "SALLOC_", "SRUN_", "OMPI_", "PMIX_", "PMI_", "RUNNER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)
           and k not in ("NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE",
                         "LOCAL_RANK", "RUNNER", "CONFIG", "MPIRUN")}
    env.update(cluster_env())  # a copy: the cached dict is never changed
    # The jobs run as root here, and mpirun refuses root without these.
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    env.update(extra)
    return env


def scontrol_job(job_id):
    """`scontrol show job -o ID` as a dict (the last value of a repeated key wins)."""
    proc = subprocess.run(["scontrol", "show", "job", "-o", str(job_id)], capture_output=True, text=True,
                          timeout=30, env=client_env({}))
    if proc.returncode != 0:
        raise AssertionError(f"scontrol show job {job_id}: {proc.stderr.strip()}")
    info = {}
    for m in re.finditer(r"(\w[\w:/]*)=(\S*)", proc.stdout):
        info[m.group(1)] = m.group(2)
    return info


class Job:
    def __init__(self, test, job_id, name):
        self.test = test
        self.id = job_id
        self.name = name

    @property
    def dir(self):
        """The job directory: logs/<sbatch job name>-<job id>/ (the templates pass --job-name)."""
        return os.path.join(self.test.work, "logs", f"{self.name}-{self.id}")

    @property
    def console(self):
        return os.path.join(self.test.work, "logs", f"{self.name}-{self.id}.out")

    def info(self):
        return scontrol_job(self.id)

    def wait_end(self, timeout=60, restarts=0):
        """Waits until the job is in a terminal state (after `restarts` requeues) and no longer
        completing; returns scontrol's view."""
        deadline = time.monotonic() + timeout
        info = {}
        while time.monotonic() < deadline:
            info = self.info()
            state = info.get("JobState", "")
            if (state in TERMINAL and int(info.get("Restarts", "0")) >= restarts
                    and "COMPLETING" not in info.get("Reason", "")):
                return info
            time.sleep(0.1)
        self.test.fail(f"job {self.id} did not end within {timeout} s: JobState={info.get('JobState')} "
                       f"Reason={info.get('Reason')} Restarts={info.get('Restarts')}\n" + self.test.diagnostics(self))

    def wait_lines(self, pattern, count, attempt=0, timeout=30, log=None):
        """Waits until `count` lines of the attempt's rank logs (or of the file `log` there, such as
        train.log) match `pattern` (a line's text after its timestamp)."""
        regex = re.compile(r"^\S+ " + pattern, re.M)
        deadline = time.monotonic() + timeout
        found = 0
        while time.monotonic() < deadline:
            found = 0
            adir = os.path.join(self.dir, f"attempt-{attempt}")
            if os.path.isdir(adir):
                for name in os.listdir(adir):
                    if (name == log) if log else name.startswith("rank-"):
                        found += len(regex.findall(read_text(os.path.join(adir, name))))
            if found >= count:
                return
            if self.info().get("JobState") in TERMINAL and int(self.info().get("Restarts", "0")) >= attempt:
                break
            time.sleep(0.1)
        self.test.fail(f"{count} worker lines matching {pattern!r} in attempt-{attempt} did not appear within "
                       f"{timeout} s (found {found})\n" + self.test.diagnostics(self))

    def outcome(self, attempt=None, timeout=15):
        """outcome.json (of the whole job, or of one attempt) once written."""
        path = os.path.join(self.dir, "outcome.json" if attempt is None else f"attempt-{attempt}/outcome.json")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(path):
                data = json.loads(read_text(path))
                if attempt is None or data.get("attempt") == attempt:
                    return data
            time.sleep(0.1)
        self.test.fail(f"{path} was not written within {timeout} s\n" + self.test.diagnostics(self))

    def manifest(self):
        return json.loads(read_text(os.path.join(self.dir, "manifest.json")))

    def rank_log(self, rank, attempt=0):
        return read_text(os.path.join(self.dir, f"attempt-{attempt}", f"rank-{rank}.log"))


class SlurmTestCase(unittest.TestCase):
    """Submits the templates from a temporary directory of its own and cleans up after each test;
    the scenarios are in test_slurm.py."""

    def setUp(self):
        self.assertTrue(RUNNER and os.access(RUNNER, os.X_OK), f"RUNNER_BIN={RUNNER!r} is not an executable")
        self.work = tempfile.mkdtemp(prefix="slurm-test-")
        os.chmod(self.work, 0o755)
        self.marker = "marker-" + uuid.uuid4().hex[:12]
        self.jobs = []
        self.started = time.monotonic()

    def tearDown(self):
        # Whatever the outcome, no job of this test may stay queued or running.
        for job in self.jobs:
            subprocess.run(["scancel", str(job.id)], env=client_env({}), capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        leftovers = processes_with(self.marker)
        while leftovers and time.monotonic() < deadline:
            time.sleep(0.1)
            leftovers = processes_with(self.marker)
        failed = self._outcome_failed()
        sys.stderr.write(f"{self.id()}: {time.monotonic() - self.started:.1f} s\n")
        if failed:
            sys.stderr.write(f"kept the submit directory {self.work}\n")
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        self.assertEqual(leftovers, [], "processes of the job outlived it: " + " ".join(map(str, leftovers)))

    def _outcome_failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None or not getattr(outcome, "success", True):
            return True
        # Python >= 3.11 reports a failure to the result at once and leaves success alone.
        result = getattr(outcome, "result", None)
        return result is not None and any(test is self for test, _ in result.failures + result.errors)

    # --- helpers -------------------------------------------------------------------------------

    def submit(self, template, args=(), env=None, sbatch=(), name=None, wrapper=True):
        """Submits slurm/<template> from this test's directory, through slurm/submit (which makes
        logs/) unless wrapper is False, with `args` after the template's name."""
        env = dict(env or {})
        env.setdefault("RUNNER", RUNNER)
        command = [os.path.join(TEMPLATES, "submit")] if wrapper else ["sbatch"]
        command += ["--parsable", *sbatch, os.path.join(TEMPLATES, template), *args]
        proc = subprocess.run(command, cwd=self.work, capture_output=True, text=True, timeout=30,
                              env=client_env(env))
        self.assertEqual(proc.returncode, 0, f"{' '.join(command)} failed:\n{proc.stdout}{proc.stderr}")
        job_id = proc.stdout.strip().split(";")[0]
        self.assertRegex(job_id, r"^\d+$", proc.stdout)
        if name is None:
            m = re.search(r"^#SBATCH --job-name=(\S+)", read_text(os.path.join(TEMPLATES, template)), re.M)
            name = m.group(1)
        job = Job(self, job_id, name)
        self.jobs.append(job)
        return job

    def sh_worker(self, script):
        """Runner arguments that make each worker `sh -c script`; the marker rides along as $0
        so that leftover processes can be found."""
        return ["--", "sh", "-c", script, self.marker]

    def diagnostics(self, job):
        text = [f"--- submit directory {self.work}"]
        if os.path.exists(job.console):
            text.append(f"--- console {job.console}:\n" + read_text(job.console)[-6000:])
        else:
            text.append(f"--- no console file {job.console}")
        if os.path.isdir(job.dir):
            for root, _, files in os.walk(job.dir):
                for name in sorted(files):
                    if name.endswith(".log") or name == "outcome.json":
                        path = os.path.join(root, name)
                        text.append(f"--- {path}:\n" + read_text(path)[-3000:])
        state = os.environ.get("SLURMTEST_DIR") or os.environ.get("SLURMTEST_DEFAULT_DIR", "")
        if state and os.path.isdir(os.path.join(state, "log")):
            for name in sorted(os.listdir(os.path.join(state, "log"))):
                if name.endswith(".log"):
                    text.append(f"--- {name} (last lines):\n" + "".join(
                        read_text(os.path.join(state, "log", name)).splitlines(True)[-15:]))
        return "\n".join(text)

    def assert_job(self, info, state, exit_code, job):
        self.assertEqual((info.get("JobState"), info.get("ExitCode")), (state, exit_code),
                         f"job {job.id}: scontrol show job says JobState={info.get('JobState')} "
                         f"ExitCode={info.get('ExitCode')}\n" + self.diagnostics(job))

    def assert_ran_everywhere(self, job, hosts, workers_per_host, attempt=0):
        """The job directory holds every rank's log from the right host, each runner's log, and a
        manifest that lists the hosts."""
        manifest = job.manifest()
        self.assertEqual([n["host"] for n in manifest["nodes"]], hosts, manifest["nodes"])
        world = len(hosts) * workers_per_host
        self.assertEqual(manifest["world_size"], world)
        names = sorted(os.listdir(os.path.join(job.dir, f"attempt-{attempt}")))
        expected = sorted([f"rank-{r}.log" for r in range(world)] + [f"runner-{h}.log" for h in hosts] +
                          ["outcome.json", "progress"])
        self.assertEqual(names, expected)
        # Every agent left its last progress file: its ranks, ended.
        progress = os.path.join(job.dir, f"attempt-{attempt}", "progress")
        self.assertEqual(sorted(os.listdir(progress)), [f"agent-{a}.json" for a in range(len(hosts))])
        for a, host in enumerate(hosts):
            with open(os.path.join(progress, f"agent-{a}.json")) as f:
                agent = json.load(f)
            self.assertEqual((agent["host"], agent["state"]), (host, "ended"))
            self.assertEqual(len(agent["ranks"]), workers_per_host)
        for rank in range(world):
            log = job.rank_log(rank, attempt)
            host = hosts[rank // workers_per_host]
            self.assertIn(f"rank {rank}/{world} local_rank {rank % workers_per_host} node "
                          f"{rank // workers_per_host} host {host} ", log.splitlines()[0])
            self.assertIn(f"READY rank={rank} world={world} host={host} ", log)
            self.assertIn("[runner] worker exited with code 0", log)
        self.assertEqual(os.readlink(os.path.join(job.dir, "current")), f"attempt-{attempt}")

    READY = 'echo "READY rank=$RANK world=$WORLD_SIZE host=$(hostname) master=$MASTER_ADDR:$MASTER_PORT ' \
            'local=$LOCAL_RANK/$LOCAL_WORLD_SIZE omp=$OMP_NUM_THREADS restart=${SLURM_RESTART_COUNT:-none} ' \
            'attempt=$TORCHELASTIC_RESTART_COUNT"'
