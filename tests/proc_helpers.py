"""Process helpers the Python test suites share (tests/integration/*.py, tests/slurm/*.py): the
environment without any scheduler's variables, the processes a job left behind, and bounded waits
that name what they waited for.

Import it after putting tests/ on sys.path:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
"""
import json
import os
import time

# Variables of an enclosing job or launcher that must not leak into the runner under test.
SCHEDULER_PREFIXES = ("SLURM_", "OMPI_", "PMIX_", "RUNNER_")


def clean_env(*extra_prefixes):
    """This process's environment without SLURM_*, OMPI_*, PMIX_*, RUNNER_* (and `extra_prefixes`),
    NNODES and NODE_RANK."""
    prefixes = SCHEDULER_PREFIXES + tuple(extra_prefixes)
    return {k: v for k, v in os.environ.items()
            if not k.startswith(prefixes) and k not in ("NNODES", "NODE_RANK")}


def read_text(path):
    with open(path) as f:
        return f.read()


def processes_with(marker):
    """PIDs whose command line contains `marker` (a job's leftovers)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def wait_for(predicate, timeout, what, interval=0.02):
    """Polls `predicate` until it returns something true and returns that; after `timeout` seconds
    raises AssertionError naming `what` (a string, or a callable giving one at that moment)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {described}")
        time.sleep(interval)


class DrainedProcess:
    """subprocess.Popen whose merged stdout+stderr is read all along by a thread, so a chatty
    child (the runner mirrors rank 0's output) never blocks on a full pipe while a test waits for
    something else. communicate() returns what it printed, like Popen's."""

    def __init__(self, args, **kwargs):
        import subprocess
        import threading
        self._proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, **kwargs)
        self._chunks = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self):
        for line in self._proc.stdout:
            self._chunks.append(line)

    def communicate(self, timeout=None):
        self._proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return "".join(self._chunks), None

    def output_so_far(self):
        return "".join(self._chunks)

    def __getattr__(self, name):  # pid, poll, send_signal, kill, returncode, ...
        return getattr(self._proc, name)


def rank_progress(attempt_dir, rank):
    """Rank `rank`'s entry in the agents' progress files (attempt_dir/progress/agent-*.json), or
    None while there is none."""
    folder = os.path.join(attempt_dir, "progress") if attempt_dir else ""
    for name in os.listdir(folder) if folder and os.path.isdir(folder) else []:
        try:
            with open(os.path.join(folder, name)) as f:
                for entry in json.load(f)["ranks"]:
                    if entry["rank"] == rank:
                        return entry
        except (OSError, ValueError):
            pass
    return None
