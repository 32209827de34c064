#!/usr/bin/python3
"""Time to the first training step: the runner starting the trainer against torchrun starting
PyTorch DDP, the quickstart CNN on Fashion-MNIST with 2 CPU workers, interleaved rounds.

Runner side: `runner --config configs/quickstart.yaml train.max_steps=1 train.log_every=1`; the
steps come from the job's own records (events.jsonl: the agent's start-up record and
worker_started; rank-0.log, each line stamped by the runner as it arrives: the trainer's banner
once LibTorch is loaded and main runs, its "process group up" and "data loaded" lines, its world
line once the model is built, its first step line). DDP side: torchrun --standalone --redirects 1 --tee 1
bench/ddp_first_step.py, which stamps the same points itself. Both from the moment the launching
command is started to rank 0's first step; median, min and max over the rounds.

    bench/first_step.py build/runner/runner [--rounds 3]
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "configs", "quickstart.yaml")
DDP = os.path.join(HERE, "ddp_first_step.py")


def stamp_of(line):
    return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()


def runner_round(runner):
    with tempfile.TemporaryDirectory(prefix="bench-first-") as tmp:
        t0 = time.time()
        subprocess.run([runner, "--log-root", tmp, "--job-name", "fs", "--config", CONFIG,
                        "train.max_steps=1", "train.log_every=1", "train.eval_every_epoch=false"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       timeout=600, cwd=tmp)
        job = glob.glob(os.path.join(tmp, "fs-*"))[0]
        with open(os.path.join(job, "events.jsonl")) as f:
            events = [json.loads(line) for line in f if line.strip()]
        with open(os.path.join(job, "attempt-0", "rank-0.log")) as f:
            lines = f.read().splitlines()
    started = next(e for e in events if e["event"] == "attempt_started")
    worker = min(stamp_of(e["time"] + " ") for e in events if e["event"] == "worker_started")

    def first(pattern):
        return next(stamp_of(l) for l in lines if re.search(pattern, l.split(" ", 1)[1]))
    points = {
        "agent ready (config, layout, job files)": stamp_of(started["time"] + " "),
        "workers spawned": worker,
        "LibTorch loaded, main running": first(r"^trainer \S+ host="),
        "process group up": first(r"^process group up: "),
        "data loaded": first(r"^data loaded: "),
        "model built (world line)": first(r"^world_size="),
        "first step done": first(r"^epoch \d+/\d+ step 1/"),
    }
    return t0, points


def ddp_round():
    t0 = time.time()
    out = subprocess.run(["torchrun", "--standalone", "--nproc_per_node", "2", "--redirects", "1",
                          "--tee", "1", DDP], capture_output=True, text=True, check=True,
                         timeout=600).stdout
    stamps = dict(re.findall(r"\[default0\]:stamp (\w+) ([\d.]+)", out))
    points = {
        "python started (torchrun's agent and rendezvous, spawn)": float(stamps["start"]),
        "torch imported": float(stamps["import"]),
        "process group up, model built": float(stamps["process_group"]),
        "data loaded": float(stamps["data"]),
        "first step done": float(stamps["first_step"]),
    }
    return t0, points


def report(name, rounds):
    print(f"\n{name}: seconds from launch (median, min-max over {len(rounds)} rounds)")
    steps = list(rounds[0][1].keys())
    previous = None
    for step in steps:
        totals = [points[step] - t0 for t0, points in rounds]
        line = f"  {step:<58} {statistics.median(totals):6.2f}  ({min(totals):.2f}-{max(totals):.2f})"
        if previous:
            deltas = [points[step] - points[previous] for _, points in rounds]
            line += f"   +{statistics.median(deltas):.2f}"
        print(line)
        previous = step
    return statistics.median(points["first step done"] - t0 for t0, points in rounds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runner")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    args.runner = os.path.abspath(args.runner)
    runner_rounds, ddp_rounds = [], []
    for _ in range(args.rounds):
        runner_rounds.append(runner_round(args.runner))
        ddp_rounds.append(ddp_round())
    ours = report("runner + trainer", runner_rounds)
    theirs = report("torchrun + PyTorch DDP", ddp_rounds)
    print(f"\ntime to first step: runner {ours:.2f} s, torchrun {theirs:.2f} s, "
          f"ratio {ours / theirs:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
