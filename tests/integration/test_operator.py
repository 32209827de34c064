"""The operator's commands on real jobs: `runner status` while a job runs and after it ended,
`runner logs` (rank selection, order, host:rank prefixes, --follow until the job ends), and the
agent's console showing every rank's warnings collapsed across ranks.

Environment: RUNNER_BIN (the runner executable). Every wait is bounded.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from proc_helpers import clean_env, processes_with, read_text, wait_for  # noqa: E402

RUNNER = os.environ.get("RUNNER_BIN", "")
MPIRUN = ["mpirun", "--allow-run-as-root", "--mca", "btl_tcp_if_include", "lo",
          "--mca", "oob_tcp_if_include", "lo"]
CLEAN_ENV = clean_env()
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"


class OperatorTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(RUNNER, "RUNNER_BIN is not set")
        self.tmp = tempfile.TemporaryDirectory(prefix="runner-ops-")
        self.root = os.path.join(self.tmp.name, "logs")
        self.go = os.path.join(self.tmp.name, "go")
        self.marker = "marker-" + uuid.uuid4().hex[:12]
        self.jobs = []

    def tearDown(self):
        for proc in self.jobs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        wait_for(lambda: not processes_with(self.marker), 10, "the job's processes to end")
        self.tmp.cleanup()

    # --- helpers -------------------------------------------------------------------------------

    def start(self, script, nproc=2, mpirun_hosts=None):
        """Starts a job whose workers run `script` (sh; $GO is a file the test creates to let
        them finish); returns the Popen of the agent(s), stderr (the console) piped."""
        def agent_args():
            return [RUNNER, "--log-root", self.root, "--job-name", "t", "--nproc-per-node",
                    str(nproc), "launch.store_addr=127.0.0.1",
                    "--", "sh", "-c", script, self.marker]
        cmd = agent_args()
        if mpirun_hosts:
            cmd = list(MPIRUN)
            for i, host in enumerate(mpirun_hosts):
                cmd += [":"] if i else []
                cmd += ["-np", "1", "-x", f"RUNNER_HOSTNAME={host}"] + agent_args()
        env = dict(CLEAN_ENV, GO=self.go)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, cwd=self.tmp.name)
        self.jobs.append(proc)
        return proc

    def job_dir(self):
        def found():
            if not os.path.isdir(self.root):
                return None
            dirs = [d for d in os.listdir(self.root) if d.startswith("t-")]
            return os.path.join(self.root, dirs[0]) if dirs else None
        return wait_for(found, 20, "the job directory")

    def wait_lines(self, job, ranks, text):
        def there():
            for r in ranks:
                path = os.path.join(job, "current", f"rank-{r}.log")
                if not os.path.exists(path) or text not in read_text(path):
                    return False
            return True
        wait_for(there, 20, f"'{text}' in the logs of ranks {ranks}")

    def runner(self, *args, timeout=30):
        return subprocess.run([RUNNER, *args], capture_output=True, text=True, timeout=timeout,
                              env=CLEAN_ENV)

    def finish(self, proc):
        open(self.go, "w").close()
        out, err = proc.communicate(timeout=60)
        return proc.returncode, out, err

    # A worker that prints a line, waits for $GO, prints another.
    WAIT_FOR_GO = ('echo "rank $RANK one"; while [ ! -e "$GO" ]; do sleep 0.05; done; '
                   'echo "rank $RANK two"')

    # --- tests ---------------------------------------------------------------------------------

    def test_status_while_running_and_after(self):
        proc = self.start(self.WAIT_FOR_GO)
        job = self.job_dir()
        self.wait_lines(job, [0, 1], "one")
        host = json.loads(read_text(os.path.join(job, "manifest.json")))["nodes"][0]["host"]
        status = self.runner("status", job)
        self.assertEqual(status.returncode, 0, status.stderr)
        lines = status.stdout.splitlines()
        self.assertEqual(lines[0], f"job {os.path.basename(job)} ({os.path.realpath(job)})")
        self.assertRegex(lines[1], r"^state: running, attempt 0, for \d+s$")
        self.assertEqual(lines[2], "ranks: 2 on 1 node")
        # Step, where and heartbeat columns come with the agents' progress files.
        self.assertIn(lines[3].split(), [["rank", "host", "pid", "status"],
                                         ["rank", "host", "pid", "step", "where", "heartbeat",
                                          "status"]])
        for r in (0, 1):
            self.assertRegex(lines[4 + r], rf"^  {r}\s+{re.escape(host)}\s+\d+\s+.*running$")
        doc = json.loads(self.runner("status", os.path.join(job, "current"), "--json").stdout)
        self.assertEqual((doc["state"], doc["attempt"], doc["over"]), ("running", 0, False))
        self.assertEqual([(r["rank"], r["host"], r["status"]) for r in doc["ranks"]],
                         [(0, host, "running"), (1, host, "running")])

        code, _, err = self.finish(proc)
        self.assertEqual(code, 0, err)
        lines = self.runner("status", job).stdout.splitlines()
        self.assertRegex(lines[1], r"^state: ended, succeeded with exit code 0 \(success\), "
                                   r"attempt 0, after \d+s$")
        self.assertEqual(lines[2], "reason: all workers of this node exited with code 0")
        self.assertRegex(lines[5], rf"^  0\s+{re.escape(host)}\s+\d+ (.* )?exited with code 0$")
        # --watch on an ended job prints once and returns.
        watch = self.runner("status", job, "--watch", "1")
        self.assertEqual((watch.returncode, watch.stdout), (0, self.runner("status", job).stdout))

    def test_logs_of_a_rank_in_order_with_their_prefix(self):
        code, _, err = self.finish(self.start('echo "rank $RANK a"; echo "rank $RANK b" >&2; '
                                              'echo "rank $RANK c"', nproc=3))
        self.assertEqual(code, 0, err)
        job = self.job_dir()
        host = json.loads(read_text(os.path.join(job, "manifest.json")))["nodes"][0]["host"]
        logs = self.runner("logs", job, "--rank", "1-2")
        self.assertEqual(logs.returncode, 0, logs.stderr)
        lines = logs.stdout.splitlines()
        for r in (1, 2):
            mine = [line for line in lines if line.startswith(f"{host}:{r} ")]
            bodies = [line.split(" ", 2)[2] for line in mine]
            self.assertTrue(bodies[0].startswith(f"[runner] rank {r}/3 local_rank {r} "), bodies)
            self.assertEqual(bodies[1:], [f"rank {r} a", f"rank {r} b", f"rank {r} c",
                                          "[runner] worker exited with code 0"])
        self.assertEqual(len(lines), 10, lines)
        self.assertFalse(any(line.startswith(f"{host}:0 ") for line in lines))
        times = [re.match(rf"^\S+ ({TIME}) ", line).group(1) for line in lines]
        self.assertEqual(times, sorted(times), "lines not merged by time")
        bad = self.runner("logs", job, "--rank", "1,7")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--rank: no log for rank 7 in ", bad.stderr)
        self.assertIn("(rank logs there: 0-2); the job has ranks 0-2", bad.stderr)

    def test_logs_follow_until_the_job_ends(self):
        proc = self.start(self.WAIT_FOR_GO)
        job = self.job_dir()
        self.wait_lines(job, [0, 1], "one")
        follow = subprocess.Popen([RUNNER, "logs", job, "--follow", "--rank", "1"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=CLEAN_ENV)
        self.jobs.append(follow)
        code, _, err = self.finish(proc)
        self.assertEqual(code, 0, err)
        out, ferr = follow.communicate(timeout=30)  # it ends by itself once the job has ended
        self.assertEqual(follow.returncode, 0, ferr)
        bodies = [line.split(" ", 2)[2] for line in out.splitlines()]
        self.assertTrue(bodies[0].startswith("[runner] rank 1/2 "), bodies)
        # Its last lines too: what the workers and the agent wrote as the job ended.
        self.assertEqual(bodies[1:], ["rank 1 one", "rank 1 two",
                                      "[runner] worker exited with code 0"])

    def test_status_of_a_failed_job_names_the_rank(self):
        code, _, _ = self.finish(self.start('[ "$RANK" = 1 ] && { echo bad input; exit 3; }; '
                                            'sleep 60'))
        self.assertEqual(code, 20)
        job = self.job_dir()
        out = self.runner("status", job).stdout
        self.assertIn("\nstate: ended, failed with exit code 20 (", out)
        self.assertRegex(out, r"\nfirst failure: rank 1 on \S+ \(pid \d+\) exited with code 3; "
                              r"log \S+/attempt-0/rank-1\.log\n")
        self.assertIn("\n  | bad input\n", out)

    def test_two_nodes_logs_and_status(self):
        # (The banner line quotes the script: "hel""lo" keeps it out of the --grep.)
        code, out, err = self.finish(self.start('echo "hel""lo from $RANK"',
                                                mpirun_hosts=["nodeA", "nodeB"]))
        self.assertEqual(code, 0, out + err)
        job = self.job_dir()
        lines = self.runner("logs", job, "--grep", "hello from").stdout.splitlines()
        self.assertEqual(sorted(line.split(" ")[0] for line in lines),
                         ["nodeA:0", "nodeA:1", "nodeB:2", "nodeB:3"])
        for line in lines:
            self.assertTrue(line.endswith(f"hello from {line.split(' ')[0].split(':')[1]}"), line)
        status = self.runner("status", job).stdout
        self.assertIn("\nranks: 4 on 2 nodes\n", status)
        self.assertRegex(status, r"\n  3\s+nodeB\s+\d+\s.*exited with code 0\n")

    def test_console_collapses_warnings_of_every_rank(self):
        code, _, err = self.finish(self.start(
            'echo "[rank $RANK] UserWarning: the same for all"; '
            '[ "$RANK" = 2 ] && echo "RuntimeError: only rank 2"; echo "plain $RANK"', nproc=4))
        self.assertEqual(code, 0, err)
        console = [line for line in err.splitlines() if "[runner]" not in line]
        collapsed = [line for line in console if "UserWarning: the same for all" in line]
        self.assertEqual(len(collapsed), 2, console)  # rank 0's mirror, then the collapsed line
        self.assertRegex(collapsed[0], rf"^{TIME} rank 0 \| \[rank 0\] UserWarning")
        self.assertRegex(collapsed[1], rf"^{TIME} \[ranks 0-3 x4\] UserWarning: the same for all$")
        self.assertEqual(len([line for line in console if line.endswith(
            "[rank 2] RuntimeError: only rank 2")]), 1, console)
        self.assertFalse(any("plain 1" in line for line in console), console)

    def test_not_a_job_directory(self):
        for path, message in [(os.path.join(self.tmp.name, "nope"), "does not exist"),
                              (self.tmp.name, "is not a job directory: it holds no manifest.json")]:
            result = self.runner("status", path)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn(message, result.stderr)


if __name__ == "__main__":
    unittest.main()
