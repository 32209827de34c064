"""Checks of an installed copy of the project (a `cmake --install` prefix, or the Debian package
extracted with dpkg-deb -x), shared by test_install.py and test_package.py: the layout, that the
programs name neither the build tree nor the source tree (RUNPATH, strings, libraries), the smoke
job run from the copy, the sbatch templates' dry runs, the man pages against the programs.

Environment: RUNNER_SOURCE_DIR, RUNNER_BUILD_DIR (the trees nothing installed may point into).
"""
import json
import os
import re
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proc_helpers import clean_env, read_text  # noqa: E402

SOURCE_DIR = os.environ.get("RUNNER_SOURCE_DIR", "")
BUILD_DIR = os.environ.get("RUNNER_BUILD_DIR", "")

# Every file an install holds, relative to its prefix.
LAYOUT = [
    "bin/runner", "bin/trainer",
    "share/cluster-runner/slurm/single_node.sbatch",
    "share/cluster-runner/slurm/multi_node.sbatch",
    "share/cluster-runner/slurm/multi_node_mpirun.sbatch",
    "share/cluster-runner/slurm/preemptible.sbatch",
    "share/cluster-runner/slurm/cpu_partition.sbatch",
    "share/cluster-runner/slurm/submit", "share/cluster-runner/slurm/README.md",
    "share/cluster-runner/configs/README.md", "share/cluster-runner/configs/smoke.yaml",
    "share/cluster-runner/configs/quickstart.yaml",
    "share/cluster-runner/configs/fashion_mnist.yaml",
    "share/cluster-runner/configs/multi_node_gpu.yaml",
    "share/cluster-runner/configs/preemptible.yaml",
    "share/man/man1/runner.1", "share/man/man1/trainer.1", "share/man/man5/runner-config.5",
    "share/doc/cluster-runner/README.md", "share/doc/cluster-runner/ARCHITECTURE.md",
]
EXECUTABLES = ["bin/runner", "bin/trainer", "share/cluster-runner/slurm/submit"]

# Each template, the example config it falls back to, and the line of its own it prints.
TEMPLATES = [
    ("single_node.sbatch", "quickstart.yaml"),
    ("multi_node.sbatch", "multi_node_gpu.yaml"),
    ("multi_node_mpirun.sbatch", "multi_node_gpu.yaml"),
    ("preemptible.sbatch", "preemptible.yaml"),
    ("cpu_partition.sbatch", "fashion_mnist.yaml"),
]

# Stands in for srun and mpirun in a template's dry run: drops the launcher's options and runs
# the runner once, as the one task of a one-node step.
FAKE_LAUNCHER = """#!/bin/sh
while [ $# -gt 0 ] && [ "$(basename -- "$1")" != runner ]; do shift; done
[ $# -gt 0 ] || { echo "fake launcher: no runner among its arguments" >&2; exit 97; }
export SLURM_STEP_ID=0 SLURM_PROCID=0 SLURM_NODEID=0 SLURM_LOCALID=0 SLURM_STEP_NUM_NODES=1
export SLURM_STEP_NUM_TASKS=1 SLURM_STEP_TASKS_PER_NODE=1 SLURM_STEP_NODELIST="$SLURM_JOB_NODELIST"
exec "$@"
"""


def modulefile_versions(prefix):
    """The modulefile's version: the name of the one file in its directory."""
    return os.listdir(os.path.join(prefix, "share/cluster-runner/modulefiles/cluster-runner"))


def run(cmd, **kwargs):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=kwargs.pop("timeout", 120), **kwargs)


def forbidden_trees(*more):
    """Absolute paths nothing installed may name: the source and build trees, and `more`."""
    trees = [os.path.realpath(p) for p in (SOURCE_DIR, BUILD_DIR) + more if p]
    return sorted(set(trees))


class InstalledChecks:
    """Mixed into a unittest.TestCase whose `prefix` is the installed copy's prefix and whose
    `tmp` is a directory for scratch files (outside the source and build trees)."""

    def check_layout(self):
        missing = [p for p in LAYOUT if not os.path.isfile(os.path.join(self.prefix, p))]
        self.assertEqual(missing, [], f"missing under {self.prefix}")
        for path in EXECUTABLES + [f"share/cluster-runner/slurm/{t}" for t, _ in TEMPLATES]:
            mode = os.stat(os.path.join(self.prefix, path)).st_mode
            self.assertTrue(mode & stat.S_IXOTH, f"{path} is not executable: {oct(mode)}")
        versions = modulefile_versions(self.prefix)
        self.assertEqual(len(versions), 1, f"modulefiles/cluster-runner/ holds {versions}")

    def check_names_no_tree(self, *more):
        """No RUNPATH/RPATH outside $ORIGIN and the system, no string naming the source or build
        tree (or `more`) in any installed file, every library resolved outside those trees."""
        trees = forbidden_trees(*more)
        for program in ("bin/runner", "bin/trainer"):
            path = os.path.join(self.prefix, program)
            dynamic = run(["readelf", "-d", path]).stdout
            for entry in re.findall(r"\((?:RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[(.*)\]",
                                    dynamic):
                for directory in entry.split(":"):
                    self.assertTrue(directory.startswith("$ORIGIN") or
                                    directory.startswith(("/usr/", "/lib")),
                                    f"{program}: RUNPATH entry '{directory}' is neither relative "
                                    f"to $ORIGIN nor a system directory")
            libraries = run(["ldd", path]).stdout
            self.assertNotIn("not found", libraries, f"{program}: ldd:\n{libraries}")
            for tree in trees:
                self.assertNotIn(tree, libraries, f"{program} loads a library from {tree}")
        for directory, _, files in os.walk(self.prefix):
            for name in files:
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    data = f.read()
                for tree in trees:
                    self.assertNotIn(tree.encode(), data,
                                     f"{path} names {tree} (the build must not leak its paths)")

    def run_smoke_job(self, env=None):
        """configs/smoke.yaml from the copy, by the copy's runner, from a directory of its own
        with nothing but the system on PATH; returns the job directory."""
        cwd = os.path.join(self.tmp, "elsewhere")
        os.makedirs(cwd, exist_ok=True)
        runner = os.path.join(self.prefix, "bin/runner")
        config = os.path.join(self.prefix, "share/cluster-runner/configs/smoke.yaml")
        env = dict(env or clean_env(), PATH="/usr/bin:/bin")
        result = run([runner, "--config", config, "--log-root", "jobs"], cwd=cwd, env=env,
                     timeout=180)
        self.assertEqual(result.returncode, 0, result.stdout)
        jobs = os.listdir(os.path.join(cwd, "jobs"))
        self.assertEqual(len(jobs), 1, jobs)
        job = os.path.join(cwd, "jobs", jobs[0])
        outcome = json.loads(read_text(os.path.join(job, "outcome.json")))
        self.assertEqual(outcome["exit_code"], 0, outcome)
        banner = read_text(os.path.join(job, "current", "rank-0.log")).splitlines()[0]
        self.assertIn(f": {os.path.join(self.prefix, 'bin/trainer')} --config", banner,
                      "the runner should start the trainer installed next to it")
        return job

    def template_dry_run(self, template, config_name):
        """The installed template run as sbatch would, on one node, with fake srun and mpirun:
        RUNNER and CONFIG unset, submitted from a directory without build/ or configs/, the
        runner found on PATH (as after `module load`), the runner's own --dry-run."""
        fake = os.path.join(self.tmp, "fakebin")
        os.makedirs(fake, exist_ok=True)
        for name in ("srun", "mpirun"):
            with open(os.path.join(fake, name), "w") as f:
                f.write(FAKE_LAUNCHER)
            os.chmod(os.path.join(fake, name), 0o755)
        submit = os.path.join(self.tmp, "submit")
        os.makedirs(submit, exist_ok=True)
        host = os.uname().nodename
        env = dict(clean_env(), PATH=f"{fake}:{self.prefix}/bin:/usr/bin:/bin",
                   SLURM_JOB_ID="4242", SLURM_JOB_NAME="train", SLURM_SUBMIT_DIR=submit,
                   SLURM_JOB_NODELIST=host, SLURM_JOB_NUM_NODES="1", SLURM_NNODES="1",
                   SLURM_NTASKS="1", SLURM_TASKS_PER_NODE="1", SLURM_CPUS_PER_TASK="2",
                   SLURM_JOB_CPUS_PER_NODE="2")
        path = os.path.join(self.prefix, "share/cluster-runner/slurm", template)
        result = run(["bash", path, "--dry-run"], cwd=submit, env=env)
        self.assertEqual(result.returncode, 0, f"{template}:\n{result.stdout}")
        runner = os.path.join(self.prefix, "bin/runner")
        config = os.path.join(os.path.realpath(os.path.join(self.prefix, "bin")), "..",
                              "share/cluster-runner/configs", config_name)
        self.assertRegex(result.stdout, re.escape(f"{runner} --config {config} --dry-run"),
                         f"{template} should run the installed runner and example config")
        self.assertIn("world_size", result.stdout, f"{template}: no dry run:\n{result.stdout}")
        self.assertIn("4242", result.stdout, f"{template}: the job id:\n{result.stdout}")
