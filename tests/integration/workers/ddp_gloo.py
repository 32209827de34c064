"""A stock PyTorch worker: env:// defaults, gloo, one all_reduce and a barrier.

Run under the runner: runner --nproc-per-node 2 -- /usr/bin/python3 ddp_gloo.py
"""
import os
import sys

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
assert rank == int(os.environ["RANK"]) and world == int(os.environ["WORLD_SIZE"])
x = torch.tensor([float(rank + 1)])
dist.all_reduce(x)
expected = world * (world + 1) / 2
print(f"rank {rank}/{world}: all_reduce sum {x.item()} (expected {expected})", flush=True)
dist.barrier()
dist.destroy_process_group()
sys.exit(0 if x.item() == expected else 1)
