#!/usr/bin/env bash
# How long the whole job takes to end after one worker fails: from the failing worker's last
# moment to the moment every agent has exited. Single node (1 agent x 2 workers), two agents
# under mpirun (acting as two nodes, 2 workers each; the failure is on the second node) and three
# (the failure on the third: its notice reaches the second through agent 0, which forwards it).
#   bench/teardown.sh [RUNNER] [REPS]
set -euo pipefail
runner=${1:-build/runner/runner}
reps=${2:-10}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mpirun=(mpirun --allow-run-as-root --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
# The failing rank writes the time it dies; the others would sleep for a minute.
worker='if [ "$RANK" = "$FAIL_RANK" ]; then date +%s.%N > "$STAMP"; kill -9 $$; fi; sleep 60'

measure() {  # label, command...
  local label=$1; shift
  local samples=()
  for i in $(seq "$reps"); do
    rm -rf "$tmp/logs"
    "$@" >/dev/null 2>&1 || true
    local end; end=$(date +%s.%N)
    samples+=("$(echo "$end - $(cat "$tmp/stamp")" | bc -l)")
  done
  printf '%s\n' "${samples[@]}" | sort -n | awk -v label="$label" '
    { v[NR] = $1 } END { printf "%-40s min %.3f s  median %.3f s  max %.3f s  (%d runs)\n", label, v[1], v[int((NR + 1) / 2)], v[NR], NR }'
}

args=(--log-root "$tmp/logs" --nproc-per-node 2 launch.store_addr=127.0.0.1 -- sh -c "$worker")
export STAMP=$tmp/stamp
FAIL_RANK=1 measure "1 node x 2 workers, rank 1 SIGKILLed" "$runner" "${args[@]}"
FAIL_RANK=3 measure "2 agents (mpirun) x 2, rank 3 SIGKILLed" \
  "${mpirun[@]}" -x STAMP -x FAIL_RANK=3 -np 1 -x RUNNER_HOSTNAME=nodeA "$runner" "${args[@]}" : \
  -x STAMP -x FAIL_RANK=3 -np 1 -x RUNNER_HOSTNAME=nodeB "$runner" "${args[@]}"
FAIL_RANK=5 measure "3 agents (mpirun) x 2, rank 5 SIGKILLed" \
  "${mpirun[@]}" -x STAMP -x FAIL_RANK=5 -np 1 -x RUNNER_HOSTNAME=nodeA "$runner" "${args[@]}" : \
  -x STAMP -x FAIL_RANK=5 -np 1 -x RUNNER_HOSTNAME=nodeB "$runner" "${args[@]}" : \
  -x STAMP -x FAIL_RANK=5 -np 1 -x RUNNER_HOSTNAME=nodeC "$runner" "${args[@]}"
