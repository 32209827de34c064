#!/usr/bin/env bash
# What the trainer's progress heartbeats cost (common/heartbeat.h, trainer/phase_tracker.h):
# the MLP of bench/trainer_throughput.sh (784-1024-1024-10, batch 64, a few ms per step), one
# standalone trainer, with and without RUNNER_HEARTBEAT_FILE, runs interleaved (with, without,
# with, ...) so drift hits both alike; median steps/s of each and their ratio. Then the cost of
# one update from a tight loop (the HeartbeatCost test of common_shared_test).
#   bench/heartbeat.sh [TRAINER] [REPEATS] [STEPS] [COMMON_SHARED_TEST]
set -euo pipefail
trainer=${1:-build/trainer/trainer}
reps=${2:-7}
steps=${3:-400}
cost_test=${4:-build/tests/common_shared_test}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
batch=64
mlp=(train.model=mlp "train.hidden_sizes=[1024,1024]" train.dataset=synthetic
     train.synthetic_samples=65536 train.batch_size=$batch train.epochs=10 train.max_steps="$steps"
     train.log_every=1000000 train.eval_every_epoch=false)

run() {  # with|without: prints steps/s over the training (start-up excluded)
  local vars=(OMP_NUM_THREADS="$(nproc)" OMP_WAIT_POLICY=PASSIVE)
  if [ "$1" = with ]; then
    : > "$tmp/heartbeat" && truncate -s 4096 "$tmp/heartbeat"  # what CreateHeartbeat makes
    vars+=(RUNNER_HEARTBEAT_FILE="$tmp/heartbeat")
  fi
  env -u RUNNER_HEARTBEAT_FILE "${vars[@]}" "$trainer" "${mlp[@]}" 2>&1 |
    sed -nE 's/^done: .* ([0-9]+) samples\/s.*/\1/p' | awk -v b="$batch" '{printf "%.2f\n", $1 / b}'
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "$(date -u +%FT%TZ) $(nproc) CPUs, $reps repeats of $steps steps each, interleaved"
with=() without=()
for i in $(seq "$reps"); do
  with+=("$(run with)")
  without+=("$(run without)")
  printf 'repeat %d: with %s steps/s, without %s steps/s\n' "$i" "${with[-1]}" "${without[-1]}"
done
m_with=$(printf '%s\n' "${with[@]}" | median)
m_without=$(printf '%s\n' "${without[@]}" | median)
echo "median steps/s: with heartbeats $m_with, without $m_without, ratio with/without" \
  "$(awk -v a="$m_with" -v b="$m_without" 'BEGIN {printf "%.4f", a / b}')"
"$cost_test" --gtest_filter='HeartbeatCost.*' | grep 'heartbeat cost:'
