"""A stock PyTorch 1.13 TCPStore client, for the store access test (test_store_access.py).

  store_peer.py worker                      a job's worker (MASTER_ADDR/MASTER_PORT, RANK): says it
                                            is ready, waits for test/go, then init_process_group,
                                            all_reduce, barrier through the same store
  store_peer.py ADDR PORT wait KEY...       waits (at most 60 s) until every KEY exists
  store_peer.py ADDR PORT set KEY VALUE
  store_peer.py ADDR PORT get KEY           prints the value
  store_peer.py ADDR PORT intrude           an ADD over a raw socket (1.13 dialect): prints
                                            "refused: ..." when the store closes the connection,
                                            "answered: N" (exit 3) when it answers
  store_peer.py ADDR PORT intrude-stock     the same with torch's TCPStore client, which 1.13's
                                            watch thread may abort (SIGABRT) once refused
"""
import datetime
import os
import socket
import struct
import sys

import torch
import torch.distributed as dist

TIMEOUT = datetime.timedelta(seconds=60)


def worker():
    rank = int(os.environ["RANK"])
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                          is_master=False, timeout=TIMEOUT)
    store.set(f"test/ready/{rank}", "1")
    store.wait(["test/go"])
    dist.init_process_group("gloo", timeout=TIMEOUT)
    x = torch.tensor([float(rank + 1)])
    dist.all_reduce(x)
    store.set(f"test/sum/{rank}", str(x.item()))
    dist.barrier()
    dist.destroy_process_group()
    print(f"rank {rank}: all_reduce sum {x.item()}", flush=True)


def intrude_raw(addr, port):
    key = b"intruder"
    request = struct.pack("=BQ", 3, len(key)) + key + struct.pack("=q", 1)  # ADD intruder 1
    reply = b""
    try:
        with socket.create_connection((addr, port), timeout=10) as s:
            s.sendall(request)
            while len(reply) < 8:
                chunk = s.recv(8 - len(reply))
                if not chunk:
                    break
                reply += chunk
    except OSError as e:
        print(f"refused: {type(e).__name__}: {e}", flush=True)
        return 0
    if len(reply) < 8:
        print(f"refused: closed after {len(reply)} bytes", flush=True)
        return 0
    print(f"answered: {struct.unpack('=q', reply)[0]}", flush=True)
    return 3


def peer(addr, port, command, args):
    if command == "intrude":
        return intrude_raw(addr, port)
    if command == "intrude-stock":
        try:
            store = dist.TCPStore(addr, port, is_master=False,
                                  timeout=datetime.timedelta(seconds=5))
            store.set("intruder", "was here")
            print("answered: " + store.get("intruder").decode(), flush=True)
            return 3
        except Exception as e:  # noqa: BLE001 - any failure is the refusal
            print(f"refused: {type(e).__name__}: {e}", flush=True)
            # At once: 1.13's watch thread of the refused store aborts the process sooner or later.
            os._exit(0)
    store = dist.TCPStore(addr, port, is_master=False, timeout=TIMEOUT)
    if command == "wait":
        store.wait(args)
    elif command == "set":
        store.set(args[0], args[1])
    elif command == "get":
        print(store.get(args[0]).decode(), flush=True)
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        worker()
        sys.exit(0)
    sys.exit(peer(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]))
