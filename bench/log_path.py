#!/usr/bin/python3
"""The log path under load: a worker printing as fast as it can, under the runner (its output
through a pipe into rank-0.log, each line timestamped) against the same command writing to a file
directly, interleaved rounds. Three workers: a million short lines (`seq`), 20,000 lines of 4 KiB,
and 32 MiB with no newline at all. For each: wall time, lines/s and MB/s, the runner's own CPU
time (the whole run's CPU minus the worker's, from /proc of the children), and a check that the
rank log holds every byte the worker printed, in order (timestamps taken off; a line longer than
64 KiB arrives as pieces).

    bench/log_path.py build/runner/runner [--rounds 3] [--baseline OTHER_RUNNER]

--baseline: a second runner binary (an earlier build), run in the same rounds, interleaved, and
reported on rows of its own. Copy both binaries out of the build tree first (a rebuild replaces
them mid-run).
"""
import argparse
import glob
import hashlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

WORKERS = {
    "1M short lines": "seq 1000000",
    "20k lines of 4 KiB": "yes \"$(head -c 4095 /dev/zero | tr '\\0' x)\" | head -n 20000",
    "32 MiB, no newline": "head -c 33554432 /dev/zero | tr '\\0' x",
}


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def direct(script, tmp):
    out = os.path.join(tmp, "direct.out")
    cpu0, t0 = children_cpu(), time.monotonic()
    subprocess.run(["sh", "-c", f"{script} > {out}"], check=True)
    wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
    with open(out, "rb") as f:
        data = f.read()
    os.remove(out)
    return wall, cpu, data


def under_runner(runner, script, tmp):
    root = os.path.join(tmp, "logs")
    cpu0, t0 = children_cpu(), time.monotonic()
    subprocess.run([runner, "--log-root", root, "--job-name", "log", "--nproc-per-node", "1",
                    "--", "sh", "-c", script], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
    log = glob.glob(os.path.join(root, "log-*", "attempt-0", "rank-0.log"))[0]
    with open(log, "rb") as f:
        lines = f.read().split(b"\n")
    subprocess.run(["rm", "-rf", root], check=True)
    # Each line: "<timestamp> <text>"; the first is the runner's banner, the last few its notes.
    body = [l.split(b" ", 1)[1] if b" " in l else b"" for l in lines[1:] if l]
    body = [l for l in body if not l.startswith(b"[runner]")]
    return wall, cpu, body


def same_bytes(direct_data, pieces):
    """Whether the pieces, joined as the worker printed them, are the direct output: a piece
    that ended at the worker's newline got one back; a piece cut at 64 KiB did not."""
    expected = direct_data.split(b"\n")
    if expected and expected[-1] == b"":
        expected.pop()
    joined = b"".join(pieces)
    return hashlib.sha256(b"".join(expected)).digest() == hashlib.sha256(joined).digest() and \
        len(pieces) >= len(expected)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runner")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="an earlier runner binary, interleaved")
    args = parser.parse_args()
    runners = {"": os.path.abspath(args.runner)}
    if args.baseline:
        runners = {"baseline: ": os.path.abspath(args.baseline), "": runners[""]}
    results = {(label, name): {"direct": [], "runner": [], "agent_cpu": [], "ok": True}
               for label in runners for name in WORKERS}
    with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
        for _ in range(args.rounds):
            for name, script in WORKERS.items():
                for label, runner in runners.items():
                    d_wall, d_cpu, data = direct(script, tmp)
                    r_wall, r_cpu, pieces = under_runner(runner, script, tmp)
                    r = results[(label, name)]
                    r["direct"].append(d_wall)
                    r["runner"].append(r_wall)
                    r["agent_cpu"].append(max(0.0, r_cpu - d_cpu))
                    r["ok"] = r["ok"] and same_bytes(data, pieces)
                    r["bytes"], r["lines"] = len(data), data.count(b"\n")
    print("| worker | direct (med) | under the runner (med, min-max) | runner / direct | "
          "lines/s under the runner | MB/s | runner's own CPU (med) | every byte, in order |")
    print("|---|---|---|---|---|---|---|---|")
    for (label, name), r in results.items():
        d, w = statistics.median(r["direct"]), statistics.median(r["runner"])
        print(f"| {label}{name} | {d:.2f} s | {w:.2f} s ({min(r['runner']):.2f}-{max(r['runner']):.2f}) "
              f"| {w / d:.2f} | {r['lines'] / w:,.0f} | {r['bytes'] / w / 1e6:.0f} "
              f"| {statistics.median(r['agent_cpu']):.2f} s | {'yes' if r['ok'] else 'NO'} |")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
