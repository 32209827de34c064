#!/usr/bin/env bash
# Trainer throughput on this machine, all in one run so the ratios mean something:
# global samples/s for 1 and 2 CPU workers, and the overlap gain (bucketed all-reduce launched
# during backward vs all-reduce after backward) for 2 workers. The CNN on Fashion-MNIST and the
# MLP on synthetic data; the figure is the mean samples/s the trainer reports at the end.
#   bench/trainer_throughput.sh [RUNNER] [STEPS]
set -euo pipefail
runner=${1:-build/runner/runner}
steps=${2:-200}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

run() {  # label, nproc, overlap, model args...
  local label=$1 nproc=$2 overlap=$3; shift 3
  rm -rf "$tmp/logs"
  "$runner" --log-root "$tmp/logs" --job-name bench --nproc-per-node "$nproc" \
    train.max_steps="$steps" train.log_every=1000000 train.eval_every_epoch=false \
    train.overlap_comm="$overlap" train.bucket_size_mb=1 "$@" >/dev/null 2>&1
  local rate
  rate=$(grep -o 'done: .*' "$tmp"/logs/bench-*/current/train.log | sed -E 's/.* ([0-9]+) samples\/s.*/\1/')
  printf '%-48s %8s samples/s\n' "$label" "$rate"
}

cnn=(train.model=cnn train.dataset=mnist train.batch_size=64 train.epochs=10)
mlp=(train.model=mlp "train.hidden_sizes=[1024,1024]" train.dataset=synthetic train.synthetic_samples=65536 train.batch_size=64 train.epochs=10)
echo "$(date -u +%FT%TZ) $(nproc) CPUs, $steps steps per run"
run "cnn fashion-mnist, 1 worker"                 1 true  "${cnn[@]}"
run "cnn fashion-mnist, 2 workers, overlap"       2 true  "${cnn[@]}"
run "cnn fashion-mnist, 2 workers, after backward" 2 false "${cnn[@]}"
run "mlp 1024x1024 synthetic, 1 worker"           1 true  "${mlp[@]}"
run "mlp 1024x1024 synthetic, 2 workers, overlap" 2 true  "${mlp[@]}"
run "mlp 1024x1024, 2 workers, after backward"    2 false "${mlp[@]}"
