"""A torchrun-contract worker that publishes heartbeats (README.md's helper, importable as
runner_heartbeat) and misbehaves on request.

HANG_MODE: "" runs STEPS steps; "skip:R:S": rank R skips its all-reduce at step S (the others
then wait for it in their last all-reduce while it waits in the final barrier).
Each rank prints "READY rank R pid P" once its process group is up.
"""
import os
import sys
import time

import torch
import torch.distributed as dist

from runner_heartbeat import Heartbeat

beat = Heartbeat()
beat("init")
dist.init_process_group("gloo")
rank = dist.get_rank()
print(f"READY rank {rank} pid {os.getpid()}", flush=True)
mode = os.environ.get("HANG_MODE", "").split(":")
skip = (int(mode[1]), int(mode[2])) if mode[0] == "skip" else None
x = torch.ones(1000)
for step in range(int(os.environ.get("STEPS", "1000000"))):
    beat("compute", step=step)
    y = x * 2
    if skip == (rank, step):
        continue  # the bug under test: this rank's all-reduce is skipped
    with beat.collective("all-reduce"):
        dist.all_reduce(y)
    beat("pause")
    time.sleep(0.02)  # a step's worth of work
with beat.collective("barrier"):
    dist.barrier()
dist.destroy_process_group()
sys.exit(0)
