"""Starts agents the torchrun way, with mpirun's command-line shape, so a test written for mpirun
runs its agents over the TCP control plane instead:

    tcp_launch.py -np 1 -x RUNNER_HOSTNAME=nodeA runner ... : -np 1 -x RUNNER_HOSTNAME=nodeB ...

Each program gets NNODES, NODE_RANK (in order), MASTER_ADDR=127.0.0.1 and a free MASTER_PORT.
Options mpirun would take before the first -np (--allow-run-as-root, --mca K V) are ignored.
SIGTERM and SIGINT are passed on to every agent. Exits, like mpirun, with the code of the first
agent to end with a non-zero code (0 when all succeed); an agent killed by a signal counts as
128 + the signal.
"""
import os
import signal
import socket
import subprocess
import sys


def parse(argv):
    """[(env additions, argv)] per ':'-separated block; -np must be 1."""
    blocks, current = [], None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if current is None:
            if arg == "-np":
                current = ({}, [])
                if argv[i + 1] != "1":
                    sys.exit(f"tcp_launch: -np {argv[i + 1]}: one agent per block only")
                i += 2
                continue
            i += 3 if arg == "--mca" else 1
            continue
        env, command = current
        if not command and arg == "-x":
            name, equals, value = argv[i + 1].partition("=")
            if equals:  # a bare "-x NAME" passes this process's own value, as it is anyway
                env[name] = value
            i += 2
        elif arg == ":":
            blocks.append(current)
            current = None
            i += 1
        else:
            command.append(arg)
            i += 1
    if current is not None:
        blocks.append(current)
    return blocks


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    blocks = parse(sys.argv[1:])
    port = free_port()
    procs = []
    for node, (extra, command) in enumerate(blocks):
        env = dict(os.environ, NNODES=str(len(blocks)), NODE_RANK=str(node),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), **extra)
        procs.append(subprocess.Popen(command, env=env))

    def forward(signum, _frame):
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    first_failure = 0
    remaining = list(procs)
    while remaining:
        pid, status = os.wait()
        for proc in remaining:
            if proc.pid == pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
                if code and not first_failure:
                    first_failure = code
                remaining.remove(proc)
                break
    sys.exit(first_failure)


if __name__ == "__main__":
    main()
