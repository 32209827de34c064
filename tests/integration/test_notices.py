#!/usr/bin/python3
"""Notices among three agents, under mpirun and over TCP: each agent tells node 0, which forwards
the attempt's first notice to every other agent, so a failure on the third node stops the second
as fast as it stops node 0 (and N agents failing at once exchange O(N) messages, not N^2)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_runner import MPIRUN, RunnerTcpTest, RunnerTest  # noqa: E402


class ThreeNodeTest(RunnerTest):
    LAUNCHER = MPIRUN + ["--oversubscribe"]  # three agents on a machine of two cores

    def test_a_failure_on_the_third_node_reaches_the_second_through_node_0(self):
        script = 'if [ "$RANK" = 5 ]; then sleep 0.5; exit 3; fi; sleep 60'
        cmd = self.mpirun_two_nodes(lambda host: self.runner_args(*self.sh_worker(script)),
                                    hosts=("nodeA", "nodeB", "nodeC"))
        proc, took = self.run_runner(cmd)
        # Without the notice nodeB's workers would sleep their 60 s.
        self.assertLess(took, 15, proc.stdout + proc.stderr)
        self.assertEqual(proc.returncode, 20, proc.stdout + proc.stderr)
        job = self.job_dir()
        outcome = self.read_json(os.path.join(job, "outcome.json"))
        failure = outcome["first_failure"]
        self.assertEqual((failure["rank"], failure["host"], failure["exit_code"]), (5, "nodeC", 3))
        self.assertEqual({a["host"]: a["code"] for a in outcome["agents"]},
                         {"nodeA": 12, "nodeB": 12, "nodeC": 20})
        with open(os.path.join(job, "attempt-0", "runner-nodeB.log")) as f:
            self.assertIn("notice from another agent: worker rank 5 on nodeC exited with code 3",
                          f.read())


class ThreeNodeTcpTest(ThreeNodeTest):
    LAUNCHER = RunnerTcpTest.LAUNCHER
    ABORT = RunnerTcpTest.ABORT


if __name__ == "__main__":
    unittest.main()
