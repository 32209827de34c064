"""PyTorch DDP on the benchmark MLP, the reference for bench/allreduce.sh: 784-512-512-10 with
ReLU, synthetic data (65536 samples), batch 64 per rank, SGD lr 0.01 momentum 0.9, one intra-op
thread per rank, gloo, DDP's default 25 MiB buckets. Rank 0 prints the global samples/s over all
steps, like the trainer's `done:` line.
    torchrun --standalone --nproc_per_node 2 --redirects 1 --tee 1 bench/ddp_mlp.py STEPS [cnn]
With "cnn": the trainer's CNN instead (conv 1-32-3, pool, conv 32-64-3, pool, fc 1600-128, fc
128-10; trainer/models.cpp), otherwise the same.
"""
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


class Cnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 3)
        self.conv2 = torch.nn.Conv2d(32, 64, 3)
        self.fc1 = torch.nn.Linear(64 * 5 * 5, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    cnn = len(sys.argv) > 2 and sys.argv[2] == "cnn"
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(42)
    model = Cnn() if cnn else torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(rank)
    images = torch.randn(65536, 1, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (65536,), generator=generator)
    batch = 64
    start = time.perf_counter()
    for step in range(steps):
        index = torch.randint(0, images.shape[0], (batch,), generator=generator)
        loss = torch.nn.functional.cross_entropy(ddp(images[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    elapsed = time.perf_counter() - start
    if rank == 0:
        print(f"ddp done: {steps} steps in {elapsed:.2f}s, "
              f"{steps * batch * world / elapsed:.0f} samples/s, world {world}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
