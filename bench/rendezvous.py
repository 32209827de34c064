#!/usr/bin/python3
"""Start-up of a job as the number of agents grows, on one machine (oversubscribed).

For N agents (each acting as a machine through RUNNER_HOSTNAME, one `sleep 1` worker each),
started by mpirun (MPI control plane) and by hand the torchrun way (TCP control plane at node 0's
store), prints: the wall time from launch to the last worker started (events.jsonl), the whole
run, and each agent's start-up steps as the agents record them (attempt_started's `startup`:
control plane up, rendezvous, job files; median and max over the agents) with the bytes each
collective moved; then each step's CPU time (median agent, node 0, max agent), with the end of
the attempt (attempt_ended's `ending`: exit-code agreement, outcome gather, node 0's
outcome.json), node 0's CPU per agent, and a verdict per step on whether its CPU grows at most
linearly with the agents. Rounds are interleaved (N and launcher alternate within a round).
Writes an SVG plot of time against agents.

    bench/rendezvous.py build/runner/runner [--agents 16,64,256] [--rounds 2] [--svg out.svg]
                        [--launchers mpi,tcp] [--worker sleep|fail|hang] [--baseline OTHER_RUNNER]

--worker fail: every worker waits until all have started, then exits 1, so every agent reports a
failure at once; --worker hang: a silent worker that never ends, judged hung after 5 s (the
`workers` step then holds the notices' or the hang agreement's traffic). --baseline: the same
runs with another runner too (rows "<launcher>-baseline"), interleaved.
"""
import argparse
import glob
import json
import math
import os
import socket
import statistics
import subprocess
import tempfile
import time

MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
          "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# fail: every worker waits for the file $GO, which the script creates once all have started, and
# exits 1: every agent has a failure at once, as when one rank's death ends every collective.
# hang: a silent worker (no heartbeat) that never ends: the hang watchdog's agreement and verdict
# (limits of 5 s), then exit 13.
WORKER = {"sleep": ["sleep", "1"],
          "fail": ["sh", "-c", 'while [ ! -e "$GO" ]; do sleep 0.05; done; exit 1'],
          "hang": ["sleep", "600"]}
HANG_LIMITS = ["launch.hang_timeout_s=5", "launch.first_step_timeout_s=5",
               "launch.grace_period_s=5"]
OPTIONS = {"worker": "sleep"}


def release_when_started(root, n, procs):
    """--worker fail: creates $GO once the job's events count n started workers."""
    if OPTIONS["worker"] != "fail":
        return
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        started = 0
        for path in glob.glob(os.path.join(root, "b-*", "events.jsonl")):
            with open(path) as f:
                started += sum('"worker_started"' in line for line in f)
        if started >= n:
            break
        time.sleep(0.2)
    open(os.environ["GO"], "w").close()


def agent_args(runner, root):
    return [runner, "--log-root", root, "--job-name", "b", "--nproc-per-node", "1",
            "launch.rendezvous_timeout_s=600",
            *(HANG_LIMITS if OPTIONS["worker"] == "hang" else []), "--", *WORKER[OPTIONS["worker"]]]


def expected(code):
    """Whether an agent's (or mpirun's) exit code is what the workers make it."""
    return code in {"sleep": (0,), "fail": (12, 20), "hang": (13,)}[OPTIONS["worker"]]


MPIRUN_QUIRKS = []  # runs where mpirun failed although every agent recorded success


def run_mpi(runner, n, root):
    cmd = MPIRUN + ["-np", str(n), "sh", "-c",
                    'RUNNER_HOSTNAME=n$OMPI_COMM_WORLD_RANK exec "$@"', "sh",
                    *agent_args(runner, root)]
    # To a file, not a pipe: nobody reads a pipe while release_when_started waits.
    with tempfile.TemporaryFile(mode="w+") as console:
        proc = subprocess.Popen(cmd, stdout=console, stderr=subprocess.STDOUT, text=True)
        release_when_started(root, n, [proc])
        proc.wait(timeout=900)
        console.seek(0)
        out = console.read()
    if (proc.returncode != 0) == (OPTIONS["worker"] != "sleep"):  # mpirun's code: any non-zero
        return
    # OpenMPI 4.1's mpirun, oversubscribed with 256 processes on one node, now and then reports
    # "process rank R with PID 0 ... exiting improperly" after every process finalized (a
    # trivial MPI_Init/MPI_Finalize program does it too); the job's own record decides.
    outcome = glob.glob(os.path.join(root, "b-*", "outcome.json"))
    if "exiting improperly" in out and outcome:
        with open(outcome[0]) as f:
            if json.load(f)["status"] == "succeeded":
                MPIRUN_QUIRKS.append(n)
                return
    raise RuntimeError(f"mpirun with {n} agents: exit {proc.returncode}\n{out[-3000:]}")


def run_tcp(runner, n, root):
    port = free_port()
    procs = []
    for r in range(n):
        env = dict(os.environ, RUNNER_HOSTNAME=f"n{r}", NNODES=str(n), NODE_RANK=str(r),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen(agent_args(runner, root), env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    release_when_started(root, n, procs)
    codes = [p.wait(timeout=900) for p in procs]
    if not all(expected(c) for c in codes):
        raise RuntimeError(f"tcp launch of {n} agents: exit codes {sorted(set(codes))}")


def measure(runner, launcher, n):
    with tempfile.TemporaryDirectory(prefix="bench-rdv-") as tmp:
        root = os.path.join(tmp, "logs")
        os.environ["GO"] = os.path.join(tmp, "go")  # the agents and their workers inherit it
        t0 = time.time()
        (run_mpi if launcher.startswith("mpi") else run_tcp)(runner, n, root)
        wall = time.time() - t0
        events = []
        for path in glob.glob(os.path.join(root, "b-*", "events.jsonl")):
            with open(path) as f:
                events += [json.loads(line) for line in f if line.strip()]
    started = [e for e in events if e["event"] == "worker_started"]
    stamps = [e for e in events if e["event"] == "attempt_started" and "startup" in e]
    endings = [e for e in events if e["event"] == "attempt_ended" and "ending" in e]
    if len(started) != n or len(stamps) != n or len(endings) != n:
        raise RuntimeError(f"{launcher} {n}: {len(started)} workers started, {len(stamps)} "
                           f"start-up records, {len(endings)} attempt-end records")
    last_worker = max(parse_time(e["time"]) for e in started) - t0
    steps, cpu, cpu0, moved, store0 = {}, {}, {}, {}, {}
    for e, record in [(e, e["startup"]) for e in stamps] + [(e, e["ending"]) for e in endings]:
        for s in record["steps"]:
            steps.setdefault(s["step"], []).append(s["s"])
            cpu.setdefault(s["step"], []).append(s["cpu_s"])
            if e["agent"] == 0:
                cpu0[s["step"]] = s["cpu_s"]
                if "store_replies" in s:
                    store0[s["step"]] = (s["store_replies"], s["store_bytes"])
                moved[s["step"]] = s.get("moved", "")
    return {"last_worker": last_worker, "wall": wall, "steps": steps, "cpu": cpu, "cpu0": cpu0,
            "moved": moved, "store0": store0}


def parse_time(text):
    # "2026-12-03T04:18:31.843+00:00"
    from datetime import datetime
    return datetime.fromisoformat(text).timestamp()


def svg_plot(results, agents, path, launchers):
    width, height, left, bottom = 640, 360, 60, 40
    series = {}
    for launcher in launchers:
        series[f"{launcher}: launch to last worker"] = [
            statistics.median(r["last_worker"] for r in results[(launcher, n)]) for n in agents]
        series[f"{launcher}: rendezvous + job files (max agent)"] = [
            statistics.median(max(r["steps"]["rendezvous"]) + max(r["steps"]["job files"])
                              for r in results[(launcher, n)]) for n in agents]
        series[f"{launcher}: node 0 CPU, every step"] = [
            statistics.median(sum(r["cpu0"].values()) for r in results[(launcher, n)])
            for n in agents]
    top = max(max(v) for v in series.values()) * 1.1 or 1
    xs = [left + (width - left - 20) * i / max(1, len(agents) - 1) for i in range(len(agents))]
    colors = ["#1f77b4", "#aec7e8", "#17becf", "#d62728", "#ff9896", "#ff7f0e"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - 20}" y2="{height - bottom}" '
           'stroke="black"/>',
           f'<line x1="{left}" y1="20" x2="{left}" y2="{height - bottom}" stroke="black"/>',
           f'<text x="{width / 2}" y="{height - 5}" text-anchor="middle">agents (log scale '
           'spacing)</text>',
           f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" '
           'text-anchor="middle">seconds</text>']
    for x, n in zip(xs, agents):
        out.append(f'<text x="{x}" y="{height - bottom + 14}" text-anchor="middle">{n}</text>')
    for k in range(5):
        v = top * k / 4
        y = height - bottom - (height - bottom - 20) * k / 4
        out.append(f'<text x="{left - 4}" y="{y + 4}" text-anchor="end">{v:.1f}</text>')
    for i, (name, values) in enumerate(series.items()):
        points = " ".join(f"{x:.1f},{height - bottom - (height - bottom - 20) * v / top:.1f}"
                          for x, v in zip(xs, values))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colors[i]}" '
                   'stroke-width="2"/>')
        out.append(f'<text x="{left + 10}" y="{30 + 14 * i}" fill="{colors[i]}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


STEPS = ("control plane", "rendezvous", "job files")           # attempt_started's `startup`
END_STEPS = ("workers", "outcome gather", "job view", "outcome.json")  # attempt_ended's `ending`


def med(values):
    return statistics.median(values)


def print_wall(results, agents, launchers):
    print("| launcher | agents | launch to last worker (med, min-max) | whole run (med) | "
          "control plane (med / max agent) | rendezvous (med / max) | job files (med / max) |")
    print("|---|---|---|---|---|---|---|")
    for launcher in launchers:
        for n in agents:
            rs = results[(launcher, n)]
            lw = [r["last_worker"] for r in rs]
            cells = [f"{med(med(r['steps'][step]) for r in rs):.3f} / "
                     f"{med(max(r['steps'][step]) for r in rs):.3f}" for step in STEPS]
            print(f"| {launcher} | {n} | {med(lw):.2f} s ({min(lw):.2f}-{max(lw):.2f}) "
                  f"| {med(r['wall'] for r in rs):.2f} s | " + " | ".join(cells) + " |")


def node0_cpu(rs, step):
    return med(r["cpu0"].get(step, 0.0) for r in rs)


def print_table(title, results, agents, launchers, cell):
    """One markdown table: a row per launcher and size, a column per step; `cell(rs, step, n)`
    gives the text ("-" where a step was not recorded)."""
    steps = STEPS + END_STEPS
    print(title + "\n")
    print("| launcher | agents | " + " | ".join(steps) + " |")
    print("|---|---|" + "---|" * len(steps))
    for launcher in launchers:
        for n in agents:
            rs = results[(launcher, n)]
            print(f"| {launcher} | {n} | " + " | ".join(cell(rs, step, n) for step in steps) +
                  " |")


def cpu_cell(rs, step, n):
    if step not in rs[0]["cpu"]:
        return "-"
    return (f"{1e3 * med(med(r['cpu'][step]) for r in rs):.1f} / "
            f"{1e3 * node0_cpu(rs, step):.1f} / "
            f"{1e3 * med(max(r['cpu'][step]) for r in rs):.1f}")


def store_cell(rs, step, n):
    if any(step not in r["store0"] for r in rs):
        return "-"
    return (f"{med(r['store0'][step][0] for r in rs) / n:.1f} / "
            f"{med(r['store0'][step][1] for r in rs) / n / 1024:.2f}")


def print_cpu(results, agents, launchers):
    print_table("CPU per step, in ms (median agent / node 0 / max agent; median of the rounds; "
                "outcome.json is node 0's alone):", results, agents, launchers, cpu_cell)
    print_table("\nNode 0's CPU per agent, in ms (node 0 CPU / agents; flat if node 0's work is "
                "linear in the agents):", results, agents, launchers,
                lambda rs, step, n: f"{1e3 * node0_cpu(rs, step) / n:.3f}")


def print_store(results, agents, launchers):
    print_table("\nNode 0's store per step, per agent (replies / agent, reply KiB / agent; median "
                "of the rounds): replies per agent flat is O(N) requests, KiB per agent growing "
                "with N is O(N^2) bytes:", results, agents, launchers, store_cell)


def verdict(small, large, n_small, n_large):
    """'grows 3.9x from 64 to 256 agents (4x agents): linear' for two CPU times."""
    ratio = n_large / n_small
    if min(small, large) < 0.002:
        return (f"{1e3 * small:.1f} ms to {1e3 * large:.1f} ms from {n_small} to {n_large} "
                "agents: under 2 ms, too small to judge")
    growth = large / small
    exponent = math.log(growth) / math.log(ratio)
    word = "linear or better" if exponent <= 1.2 else "WORSE THAN LINEAR"
    return (f"grows {growth:.1f}x from {n_small} to {n_large} agents ({ratio:g}x agents, "
            f"exponent {exponent:.2f}): {word}")


def print_verdicts(results, agents, launchers):
    print("\nVerdicts on CPU (exponent k in cpu ~ agents^k; linear when k <= 1.2):")
    for launcher in launchers:
        for step in STEPS + END_STEPS:
            for who in ("node 0", "median agent"):
                if who == "median agent" and step == "outcome.json":
                    continue
                if any(step not in results[(launcher, n)][0]["cpu"] for n in agents):
                    continue
                lines = []
                spans = list(zip(agents, agents[1:]))
                if len(agents) > 2:
                    spans.append((agents[0], agents[-1]))  # the whole span: less noise
                for a, b in spans:
                    ra, rb = results[(launcher, a)], results[(launcher, b)]
                    if who == "node 0":
                        va, vb = node0_cpu(ra, step), node0_cpu(rb, step)
                    else:
                        va = med(med(r["cpu"][step]) for r in ra)
                        vb = med(med(r["cpu"][step]) for r in rb)
                    lines.append(verdict(va, vb, a, b))
                print(f"- {launcher}, {step}, {who}: " + "; ".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runner")
    parser.add_argument("--agents", default="16,64,256")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--svg", default="")
    parser.add_argument("--launchers", default="mpi,tcp")
    parser.add_argument("--worker", choices=sorted(WORKER), default="sleep")
    parser.add_argument("--baseline", default="")
    args = parser.parse_args()
    OPTIONS["worker"] = args.worker
    agents = [int(n) for n in args.agents.split(",")]
    launchers = args.launchers.split(",")
    runners = {launcher: args.runner for launcher in launchers}
    if args.baseline:
        runners.update({launcher + "-baseline": args.baseline for launcher in launchers})
        launchers = sorted(runners)
    results = {}
    for _ in range(args.rounds):
        for n in agents:
            for launcher in launchers:
                results.setdefault((launcher, n), []).append(
                    measure(runners[launcher], launcher, n))
    print_wall(results, agents, launchers)
    print()
    print_cpu(results, agents, launchers)
    print_store(results, agents, launchers)
    print_verdicts(results, agents, launchers)
    print()
    print("What the collectives moved (agent 0's record, last round):")
    for launcher in launchers:
        for n in agents:
            moved = results[(launcher, n)][-1]["moved"]
            print(f"- {launcher} {n}: rendezvous {moved.get('rendezvous')}; "
                  f"job files {moved.get('job files')}; "
                  f"outcome {moved.get('outcome gather')}")
    if MPIRUN_QUIRKS:
        print(f"\nmpirun exited 1 ('exiting improperly', PID 0) although the job succeeded, at "
              f"{MPIRUN_QUIRKS} agents")
    if args.svg:
        svg_plot(results, agents, args.svg, launchers)
        print(f"\nplot: {args.svg}")


if __name__ == "__main__":
    main()
