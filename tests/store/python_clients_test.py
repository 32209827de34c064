#!/usr/bin/python3
"""Stock PyTorch 1.13 Python clients against runner::StoreServer (hosted by tests' store_host).

Usage: python_clients_test.py STORE_HOST_BINARY

(a) torch.distributed.TCPStore client ops, in this process;
(b) two worker processes doing init_process_group("gloo") the way torchelastic-launched workers do
    (env:// with TORCHELASTIC_USE_AGENT_STORE=True: a TCPStore client under the prefix
    /worker/attempt_<TORCHELASTIC_RESTART_COUNT>), all_reduce, barrier, new_group + all_reduce;
    then again as restart 1 against the same server.
Every wait is bounded; a watchdog ends the whole test after WATCHDOG_S seconds.
"""

import datetime
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

WATCHDOG_S = 60
STORE_TIMEOUT = datetime.timedelta(seconds=10)
WORKER_TIMEOUT_S = 25


def fail(message):
    print("FAIL: " + message, flush=True)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


# ---------------------------------------------------------------------------------------------
# Worker mode: one rank of a 2-process job, environment set by the parent.

def worker_main():
    import torch
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    attempt = os.environ["TORCHELASTIC_RESTART_COUNT"]
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=20))
    check(dist.get_rank() == rank and dist.get_world_size() == 2, "rank/world size from env://")

    t = torch.tensor([float(rank + 1), 10.0 * (rank + 1)])
    dist.all_reduce(t)
    check(t.tolist() == [3.0, 30.0], "all_reduce sum on rank %d: %s" % (rank, t.tolist()))

    dist.barrier()

    group = dist.new_group([0, 1])
    u = torch.full((3,), float(rank + 1) * 2)
    dist.all_reduce(u, group=group)
    check(u.tolist() == [6.0, 6.0, 6.0], "new_group all_reduce on rank %d: %s" % (rank, u.tolist()))

    b = torch.tensor([42.0 if rank == 0 else 0.0])
    dist.broadcast(b, src=0)
    check(b.item() == 42.0, "broadcast on rank %d" % rank)

    dist.barrier(group=group)
    dist.destroy_process_group()
    print("worker rank=%d attempt=%s ok" % (rank, attempt), flush=True)


# ---------------------------------------------------------------------------------------------
# Parent mode.

def start_store_host(binary, log):
    proc = subprocess.Popen([binary, "127.0.0.1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=log)
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    check(ready, "store_host printed no port within 10 s")
    line = proc.stdout.readline().decode().strip()
    check(line.startswith("port="), "store_host printed %r, not port=<N>" % line)
    port = int(line[len("port="):])
    check(0 < port < 65536, "bad port %d" % port)
    return proc, port


def client_ops(port):
    import torch.distributed as dist

    t0 = time.monotonic()
    store = dist.TCPStore("127.0.0.1", port, None, False, STORE_TIMEOUT)
    other = dist.TCPStore("127.0.0.1", port, None, False, STORE_TIMEOUT)

    store.set("a", "1")
    check(store.get("a") == b"1", "get a")
    store.set("a", b"\x00bin\xff")
    check(store.get("a") == b"\x00bin\xff", "get binary value")

    check(store.add("n", 5) == 5, "add new key")
    check(store.add("n", -2) == 3, "add")
    check(other.add("n", 10) == 13, "add from another client")
    check(store.get("n") == b"13", "add stores decimal text")

    store.wait(["a", "n"])
    store.wait(["a"], datetime.timedelta(seconds=1))

    check(store.compare_set("cs", "", "first") == b"first", "compare_set creates")
    check(store.compare_set("cs", "first", "second") == b"second", "compare_set swaps")
    check(store.compare_set("cs", "nope", "third") == b"second", "compare_set mismatch")

    check(store.num_keys() == 3, "num_keys is %d, expected 3" % store.num_keys())
    check(store.delete_key("cs") is True, "delete_key existing")
    check(store.delete_key("cs") is False, "delete_key missing")
    check(store.num_keys() == 2, "num_keys after delete")

    # wait() on a key nobody sets raises after its timeout.
    start = time.monotonic()
    try:
        store.wait(["never"], datetime.timedelta(milliseconds=300))
        fail("wait on a missing key returned")
    except RuntimeError as e:
        elapsed = time.monotonic() - start
        check(0.25 <= elapsed < 5, "wait timeout took %.2f s" % elapsed)
        check("imeout" in str(e) or "timed out" in str(e), "wait timeout message: %s" % e)

    # 1.13 gives up a WAIT without telling the server. The server drops it when the connection's
    # next request comes, so the key appearing afterwards must not garble this connection's
    # replies. (Had the key appeared between the timeout and the next request, no server could
    # tell: 1.13's own server and ours both answer that WAIT then, and the client reads the byte
    # as the start of its next reply. 2.x clients send CANCEL_WAIT instead.)
    check(store.get("a") == b"\x00bin\xff", "get after a timed-out wait")
    other.set("never", "now")
    time.sleep(0.1)
    check(store.add("n", 1) == 14, "add after a timed-out wait")
    check(store.get("never") == b"now", "get of the key once waited for")

    # Waiting until another client sets the key.
    other_setter_start = time.monotonic()
    store.set_timeout(datetime.timedelta(seconds=5))
    import threading
    threading.Timer(0.2, lambda: other.set("later", "x")).start()
    check(store.get("later") == b"x", "get waits for another client's set")
    check(time.monotonic() - other_setter_start >= 0.15, "get of a missing key returned early")

    # A get of a key that never comes raises after the store's timeout.
    store.set_timeout(datetime.timedelta(milliseconds=300))
    try:
        store.get("absent")
        fail("get of a missing key returned")
    except RuntimeError:
        pass
    check(store.get("n") == b"14", "get after a timed-out get")
    print("client ops ok (%.1f s)" % (time.monotonic() - t0), flush=True)


def run_workers(port, attempt):
    env_base = dict(os.environ)
    env_base.update({
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "WORLD_SIZE": "2",
        "TORCHELASTIC_USE_AGENT_STORE": "True",
        "TORCHELASTIC_RESTART_COUNT": str(attempt),
        "GLOO_SOCKET_IFNAME": "lo",
    })
    procs = []
    for rank in range(2):
        env = dict(env_base, RANK=str(rank), LOCAL_RANK=str(rank))
        procs.append(subprocess.Popen(["/usr/bin/python3", os.path.abspath(__file__), "--worker"],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    outputs = []
    for rank, proc in enumerate(procs):
        try:
            out, _ = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            out, _ = proc.communicate()
            fail("attempt %d rank %d did not finish within %d s:\n%s"
                 % (attempt, rank, WORKER_TIMEOUT_S, out.decode(errors="replace")))
        outputs.append(out.decode(errors="replace"))
        check(proc.returncode == 0, "attempt %d rank %d exited %d:\n%s"
              % (attempt, rank, proc.returncode, outputs[-1]))
        check("worker rank=%d attempt=%d ok" % (rank, attempt) in outputs[-1],
              "attempt %d rank %d output:\n%s" % (attempt, rank, outputs[-1]))


def check_attempt_keys(port, attempts):
    import torch.distributed as dist

    store = dist.TCPStore("127.0.0.1", port, None, False, datetime.timedelta(seconds=5))
    store.set_timeout(datetime.timedelta(seconds=2))
    for attempt in attempts:
        # Barriers of init_process_group (1) and new_group (2), under the attempt's prefix.
        for barrier in (1, 2):
            key = "/worker/attempt_%d/default_pg/store_based_barrier_key:%d" % (attempt, barrier)
            try:
                value = store.get(key)
            except RuntimeError as e:
                fail("%s is missing (%s)" % (key, e))
            check(value == b"2", "%s is %r, expected b'2' (the two ranks of that attempt only)"
                  % (key, value))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main()
        return
    check(len(sys.argv) == 2, "usage: python_clients_test.py STORE_HOST_BINARY")
    started = time.monotonic()
    log = tempfile.TemporaryFile()
    host, port = start_store_host(sys.argv[1], log)

    def on_alarm(signum, frame):
        host.kill()
        fail("watchdog: the test ran longer than %d s" % WATCHDOG_S)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(WATCHDOG_S)
    ok = False
    try:
        client_ops(port)
        for attempt in (0, 1):
            t0 = time.monotonic()
            run_workers(port, attempt)
            print("gloo workers attempt %d ok (%.1f s)" % (attempt, time.monotonic() - t0), flush=True)
        check_attempt_keys(port, (0, 1))
        ok = True
    finally:
        host.stdin.close()  # store_host stops when its stdin ends
        try:
            rc = host.wait(timeout=10)
        except subprocess.TimeoutExpired:
            host.kill()
            rc = "killed: did not stop when its stdin closed"
        log.seek(0)
        host_log = log.read().decode(errors="replace")
        if not ok or rc != 0:
            print("store_host exit: %s; its log:\n%s" % (rc, host_log), flush=True)
    check(rc == 0, "store_host exited %s" % rc)
    print("PASS (%.1f s)" % (time.monotonic() - started), flush=True)


if __name__ == "__main__":
    main()
