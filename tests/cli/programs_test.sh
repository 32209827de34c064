#!/usr/bin/env bash
# The real runner and trainer executables, as users run them: help, version, exit codes, errors
# on stderr, the dry run, the trainer's BLAS banner.
#   programs_test.sh RUNNER TRAINER SOURCE_DIR
set -u
runner=$1 trainer=$2 src=$3
failures=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# expect NAME EXPECTED_RC PATTERN CMD... : runs CMD, checks its exit code and that its combined
# output matches the extended regex PATTERN.
expect() {
  local name=$1 want_rc=$2 pattern=$3; shift 3
  env -u SLURM_JOB_ID -u OMPI_COMM_WORLD_SIZE -u NNODES -u NODE_RANK "$@" >"$tmp/out" 2>&1
  local rc=$?
  if [ "$rc" != "$want_rc" ] || ! grep -Eq -e "$pattern" "$tmp/out"; then
    echo "FAIL: $name: exit $rc (want $want_rc), output should match /$pattern/:"
    sed 's/^/    /' "$tmp/out"
    failures=$((failures + 1))
  else
    echo "ok: $name"
  fi
}

expect "runner --help lists flags"       0 'dry-run'                 "$runner" --help
for flag in --config --dry-run --print-config --list-keys --nproc-per-node --job-name --log-root --max-restarts --help --version; do
  expect "runner --help documents $flag" 0 "^ +(-[a-z] \[ )?$flag" "$runner" --help
done
expect "runner --help has exit codes"    0 '20  worker failed'       "$runner" --help
expect "runner --version"                0 '^runner [0-9]+\.[0-9]+'  "$runner" --version
expect "runner misspelt flag"            2 'did you mean --dry-run'  "$runner" --dry-runn
expect "runner bad override"             3 "unknown key 'train.lrr'; did you mean 'train.lr'" "$runner" --dry-run train.lrr=1
expect "runner missing config"           3 "config file 'nope.yaml' cannot be read" "$runner" --config nope.yaml --dry-run
expect "runner bad env override"         3 'RUNNER_TRAIN__LR: train.lr: expected a number' env RUNNER_TRAIN__LR=x "$runner" --dry-run
expect "runner dry run, local"           0 'rank 1  local_rank 1  world_size 2' "$runner" --config "$src/configs/quickstart.yaml" --dry-run
expect "runner print-config origins"     0 'nproc_per_node: 3 +# from command line' "$runner" --print-config launch.nproc_per_node=3
expect "runner list-keys"                0 '\| `train.lr` \|'        "$runner" --list-keys
expect "runner env error"                4 "SLURM_PROCID is not set" env SLURM_JOB_ID=7 SLURM_STEP_ID=0 SLURM_NNODES=1 SLURM_NTASKS=1 SLURM_JOB_NODELIST=n1 SLURM_TASKS_PER_NODE=1 SLURM_NODEID=0 SLURM_LOCALID=0 "$runner" --dry-run
expect "runner -- without command"       2 "'--' must be followed"   "$runner" --
expect "trainer --help"                  0 'RUNNER_CONFIG'           "$trainer" --help
expect "trainer --version"               0 '^trainer [0-9]+\.[0-9]+' "$trainer" --version
expect "trainer banner names OpenBLAS"   0 'blas=OpenBLAS blas_threads=[0-9]+' "$trainer" --banner
expect "trainer banner threads from OMP" 0 'intra_op_threads=1 .*threads from OMP_NUM_THREADS' env OMP_NUM_THREADS=1 "$trainer" --banner
expect "trainer bad OMP_NUM_THREADS"     4 "OMP_NUM_THREADS='two' is not a positive integer" env OMP_NUM_THREADS=two "$trainer" --banner
expect "trainer bad LOCAL_WORLD_SIZE"    4 "LOCAL_WORLD_SIZE='x' is not a positive integer" env LOCAL_WORLD_SIZE=x "$trainer" --banner
expect "trainer config error"            3 "train.epochs: expected an integer" "$trainer" --banner train.epochs=0
expect "trainer misspelt flag"           2 'did you mean --banner'  "$trainer" --baner

if [ "$failures" -gt 0 ]; then echo "$failures check(s) failed"; exit 1; fi
echo "all checks passed"
