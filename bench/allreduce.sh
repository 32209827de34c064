#!/usr/bin/env bash
# Gradient exchange on this machine, in interleaved rounds (bench/README.md):
#  1. all-reduce bandwidth, 1 KiB..64 MiB of floats between 2 local ranks: the trainer's
#     communicator over gloo, over gloo sending bf16 (train.gradient_compression, the road
#     between machines) and over shared memory (allreduce_bench under the runner), and
#     OpenMPI's MPI_Allreduce as a reference (bench/mpi_allreduce.c, built here with mpicc);
#     GB/s = bytes / median time of one all-reduce;
#  2. training throughput of the trainer (gloo and shm) against PyTorch DDP (Debian's
#     python3-torch under torchrun) on the MLP 784-512-512-10, synthetic data, batch 64 per rank,
#     SGD, 1 intra-op thread per rank, at 1 and 2 workers: global samples/s over all steps;
#     and two independent 1-worker jobs at once (no-comm-bound: 2 workers without any gradient
#     exchange, the most 2 workers can reach on this machine).
# Prints median, min and max over the rounds, and the ratios.
#   bench/allreduce.sh [ROUNDS] [STEPS] [PART]   (PART: all, sweep or train; BUILD=build;
#   MODEL=cnn trains the trainer's CNN instead of the MLP, on both sides; NET_RATE=1gbit (root)
#   runs everything in a network namespace whose loopback is shaped to that rate with tc's tbf,
#   a stand-in for the network between two machines)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
steps=${2:-300}
part=${3:-all}
build=${BUILD:-build}
model=${MODEL:-mlp}
runner=$build/runner/runner
bench=$build/bench/allreduce_bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${NET_RATE:-}" ] && [ -z "${ALLREDUCE_NETNS:-}" ]; then
  ns=allreduce-bench-$$
  ip netns add "$ns"
  trap 'ip netns del "$ns"; rm -rf "$tmp"' EXIT
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" tc qdisc add dev lo root tbf rate "$NET_RATE" burst 1mb latency 100ms
  echo "loopback shaped to $NET_RATE (tc tbf) in network namespace $ns"
  ALLREDUCE_NETNS=$ns ip netns exec "$ns" "$0" "$@"
  exit
fi
results=$tmp/results.txt
: >"$results"

sweep() {  # mode round
  local out=$tmp/sweep-$1-$2.txt
  if [ "$1" = mpi ]; then
    mpirun --allow-run-as-root --mca btl self,vader -np 2 "$tmp/mpi_allreduce" 0.3 >"$out"
  else
    local allreduce=${1%-*} compression=none
    [ "$1" = gloo-bf16 ] && compression=bf16
    "$runner" --log-root "$tmp/logs" --job-name ar --nproc-per-node 2 -- \
      "$bench" --allreduce "$allreduce" --compression "$compression" --seconds 0.3 \
      --out "$out" >/dev/null 2>&1
  fi
  grep -v '^#' "$out" | while read -r bytes _ _ _ gbs; do echo "sweep $1 $bytes $gbs"; done >>"$results"
}

trainer_run() {  # nproc allreduce [label [overrides...]]: global samples/s into the results
  local nproc=$1 allreduce=$2 label=${3:-$2}
  shift 2
  shift $(($# > 0 ? 1 : 0))
  local logs=$tmp/logs-$label
  rm -rf "$logs"
  "$runner" --log-root "$logs" --job-name tp --nproc-per-node "$nproc" train.model="$model" \
    "train.hidden_sizes=[512,512]" train.dataset=synthetic train.synthetic_samples=65536 \
    train.batch_size=64 train.optimizer=sgd train.lr=0.01 train.momentum=0.9 train.epochs=100 \
    train.max_steps="$steps" train.log_every=1000000 train.eval_every_epoch=false \
    train.num_threads=1 train.allreduce="$allreduce" "$@" >/dev/null 2>&1
  local rate
  rate=$(grep -o 'done: .*' "$logs"/tp-*/current/train.log | sed -E 's/.* ([0-9]+) samples\/s.*/\1/')
  echo "train trainer-$label $nproc $rate" >>"$results"
}

# Two independent 1-worker jobs at once: no communication at all, so their summed samples/s is
# what 2 workers could reach on this machine if exchanging gradients cost nothing.
trainer_pair() {
  trainer_run 1 gloo pair-a &
  trainer_run 1 gloo pair-b
  wait
  local a b
  a=$(grep '^train trainer-pair-a ' "$results" | tail -1 | cut -d' ' -f4)
  b=$(grep '^train trainer-pair-b ' "$results" | tail -1 | cut -d' ' -f4)
  echo "train no-comm-bound 2 $((a + b))" >>"$results"
}

ddp_run() {  # nproc
  local rate
  rate=$(OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node "$1" --redirects 1 --tee 1 \
    bench/ddp_mlp.py "$steps" "$model" 2>/dev/null | grep -o 'ddp done: .*' |
    sed -E 's/.* ([0-9]+) samples\/s.*/\1/')
  echo "train ddp $1 $rate" >>"$results"
}

echo "$(date -u +%FT%TZ) $(uname -n), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$rounds rounds, $steps steps per training run"
mpicc -O2 -o "$tmp/mpi_allreduce" bench/mpi_allreduce.c
for round in $(seq "$rounds"); do
  if [ "$part" != train ]; then
    for mode in gloo gloo-bf16 shm mpi; do sweep "$mode" "$round"; done
  fi
  if [ "$part" != sweep ]; then
    trainer_run 1 gloo
    ddp_run 1
    trainer_run 2 gloo
    ddp_run 2
    trainer_run 2 shm
    trainer_run 2 gloo gloo-bf16 train.gradient_compression=bf16
    trainer_pair
  fi
done
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" "$model" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
def stats(values):
    return statistics.median(values), min(values), max(values)
sweep = {}
for kind, mode, size, value in rows:
    if kind == "sweep":
        sweep.setdefault(int(size), {}).setdefault(mode, []).append(float(value))
if sweep:
    print("\nall-reduce GB/s between 2 local ranks (median [min-max] over rounds)")
    print(f"{'bytes':>10} {'gloo':>20} {'gloo-bf16':>20} {'shm':>20} {'mpi':>20} "
          f"{'bf16/gloo':>9} {'shm/gloo':>9} {'shm/mpi':>8}")
    for size in sorted(sweep):
        cells, med = [], {}
        for mode in ("gloo", "gloo-bf16", "shm", "mpi"):
            v = sweep[size].get(mode)
            if v:
                m, lo, hi = stats(v)
                med[mode] = m
                cells.append(f"{m:7.3f} [{lo:.2f}-{hi:.2f}]")
            else:
                cells.append("-")
        ratio = lambda a, b: f"{med[a] / med[b]:.2f}" if a in med and b in med else "-"
        print(f"{size:>10} " + " ".join(f"{c:>20}" for c in cells) +
              f" {ratio('gloo-bf16', 'gloo'):>9} {ratio('shm', 'gloo'):>9} {ratio('shm', 'mpi'):>8}")
train = {}
for kind, who, nproc, value in rows:
    if kind == "train" and value:
        train.setdefault((who, int(nproc)), []).append(float(value))
if train:
    name = "the CNN" if sys.argv[2] == "cnn" else "MLP 784-512-512-10"
    print(f"\ntraining samples/s, {name} (median [min-max] over rounds)")
    med = {}
    for key in sorted(train):
        m, lo, hi = stats(train[key])
        med[key] = m
        print(f"  {key[0]:<15} {key[1]} worker(s) {m:8.0f} [{lo:.0f}-{hi:.0f}]  each: "
              + ", ".join(f"{v:.0f}" for v in train[key]))
    def show(label, a, b):
        if a in med and b in med:
            print(f"  {label}: {med[a] / med[b]:.2f}")
    show("trainer shm, 2 workers / DDP, 2 workers", ("trainer-shm", 2), ("ddp", 2))
    show("trainer gloo, 2 workers / DDP, 2 workers", ("trainer-gloo", 2), ("ddp", 2))
    show("trainer shm / trainer gloo, 2 workers", ("trainer-shm", 2), ("trainer-gloo", 2))
    show("trainer gloo sending bf16 / trainer gloo, 2 workers", ("trainer-gloo-bf16", 2),
         ("trainer-gloo", 2))
    show("trainer 1 worker / DDP 1 worker", ("trainer-gloo", 1), ("ddp", 1))
    show("no-communication bound, 2 workers / DDP, 2 workers", ("no-comm-bound", 2), ("ddp", 2))
    show("trainer shm, 2 workers / no-communication bound", ("trainer-shm", 2),
         ("no-comm-bound", 2))
    for who in ("trainer-shm", "trainer-gloo", "ddp"):
        one = ("trainer-gloo", 1) if who.startswith("trainer") else ("ddp", 1)
        if (who, 2) in med and one in med:
            print(f"  scaling {who} 2 vs 1 worker (per-worker efficiency): "
                  f"{med[(who, 2)] / (2 * med[one]):.2f}")
PY
