"""PyTorch DDP doing what the trainer does before its first step, the reference for
bench/first_step.py: the quickstart CNN (conv 1-32-3, pool, conv 32-64-3, pool, fc 1600-128,
fc 128-10; the trainer's trainer/models.cpp), Fashion-MNIST's 60,000 training images read from
Debian's idx files and normalised, gloo, one intra-op thread, batch 64 per rank, SGD lr 0.05
momentum 0.9, one step. Prints wall-clock stamps (Unix seconds) as it goes:
    stamp import|process_group|data|first_step <seconds>
    torchrun --standalone --nproc_per_node 2 --redirects 1 --tee 1 bench/ddp_first_step.py
"""
import gzip
import time

print(f"stamp start {time.time():.6f}", flush=True)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

from ddp_mlp import Cnn  # noqa: E402  (the trainer's CNN, shared with bench/allreduce.sh)

DATA = "/usr/share/datasets/fashion-mnist"


def stamp(what):
    print(f"stamp {what} {time.time():.6f}", flush=True)


def idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def main():
    stamp("import")
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(42)
    ddp = DistributedDataParallel(Cnn())
    stamp("process_group")
    images = torch.from_numpy(idx(f"{DATA}/train-images-idx3-ubyte.gz", 16).copy())
    images = images.reshape(-1, 1, 28, 28).float().div_(255)
    images = (images - images.mean()) / images.std()
    labels = torch.from_numpy(idx(f"{DATA}/train-labels-idx1-ubyte.gz", 8).astype(np.int64))
    stamp("data")
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    index = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(rank))[:64]
    loss = torch.nn.functional.cross_entropy(ddp(images[index]), labels[index])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    stamp("first_step")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
