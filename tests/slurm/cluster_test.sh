#!/usr/bin/env bash
# The cluster harness itself (tests/slurm/cluster): a one-node cluster whose node has its own
# hostname, address and no default route; refusals that name the variable to change when the
# state directory, a name prefix, the subnet or the port is taken; 'down' that leaves no process,
# namespace, interface or cgroup behind; a failing 'up' that tears down what it had started; and
# the loud refusal without root.
#
#   tests/slurm/cluster_test.sh DIR PREFIX SUBNET PORT OTHER_DIR OTHER_PREFIX OTHER_SUBNET
# The first four are this test's own cluster (never the one the other slurm tests share), the
# others a second set of free values. Prints "N passed, N failed"; exits 1 if any check failed.
set -uo pipefail

if [ $# != 7 ]; then
  echo "usage: $0 DIR PREFIX SUBNET PORT OTHER_DIR OTHER_PREFIX OTHER_SUBNET" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
cluster=$here/cluster
export SLURMTEST_DIR=$1 SLURMTEST_PREFIX=$2 SLURMTEST_SUBNET=$3 SLURMTEST_PORT=$4
SLURMTEST_OTHER_DIR=$5 SLURMTEST_OTHER_PREFIX=$6 SLURMTEST_OTHER_SUBNET=$7
unset SLURM_CONF

passed=0
failed=0
check() {  # NAME CONDITION...: runs the condition, counts and reports it
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok    $name"
  else
    failed=$((failed + 1))
    echo "FAIL  $name"
  fi
}

# Whatever happens, this test's clusters go down.
cleanup() {
  "$cluster" down >/dev/null 2>&1
  SLURMTEST_DIR=$SLURMTEST_OTHER_DIR SLURMTEST_PREFIX=$SLURMTEST_OTHER_PREFIX "$cluster" down >/dev/null 2>&1
}
trap cleanup EXIT
cleanup

nothing_left() {  # PREFIX DIR: no process, namespace, interface or cgroup of that cluster remains
  local prefix=$1 dir=$2 ok=0 f pid comm
  for f in "$dir"/pids/*; do
    [ -e "$f" ] || continue
    read -r pid comm <"$f"
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]; then echo "  still running: $comm ($pid)"; ok=1; fi
  done
  for f in /run/netns/"$prefix"-node*; do
    if [ -e "$f" ]; then echo "  netns left: $f"; ok=1; fi
  done
  if ip -o link show | awk -F': ' '{print $2}' | grep -q "^${prefix}\(br\|v[0-9]\|p[0-9]\)"; then echo "  interfaces left"; ok=1; fi
  if grep -qs . "$dir/created"; then echo "  $dir/created still lists: $(tr '\n' ' ' <"$dir/created")"; ok=1; fi
  if find /sys/fs/cgroup -maxdepth 2 -name "runner-slurm-$prefix-*" 2>/dev/null | grep -q .; then echo "  cgroup left"; ok=1; fi
  return $ok
}

t0=$SECONDS
# --- up 1 -----------------------------------------------------------------------------------
out=$("$cluster" up 1 2>&1)
rc=$?
echo "$out"
check "up 1 succeeds" [ $rc = 0 ]
check "up prints the client variables" grep -q "^export SLURM_CONF=$SLURMTEST_DIR/etc/slurm.conf$" <<<"$out"
eval "$("$cluster" env)"
check "status lists one idle node" sh -c "'$cluster' status | grep -q '^node1 debug\* idle'"
check "nothing under /etc was written" sh -c "! grep -qs slurmctl /etc/hosts && ! grep -rqs '$SLURMTEST_DIR' /etc/slurm"

# The node is a host of its own: hostname node1, address SUBNET.11, no default route.
job=$(sbatch --parsable --chdir=/tmp --output=/dev/null --wrap \
  "{ hostname; ip -4 -o addr show dev eth0; echo route:; ip route show default; } > '$SLURMTEST_DIR/probe.txt'")
for _ in $(seq 100); do
  state=$(scontrol show job -o "$job" | grep -o 'JobState=[A-Z]*')
  case "$state" in *COMPLETED|*FAILED|*CANCELLED) break ;; esac
  sleep 0.1
done
echo "probe job $job: $state"; cat "$SLURMTEST_DIR/probe.txt" 2>/dev/null
check "a job runs on the node" [ "$state" = JobState=COMPLETED ]
check "the node's hostname is node1" sh -c "head -n 1 '$SLURMTEST_DIR/probe.txt' | grep -qx node1"
check "the node's address is $SLURMTEST_SUBNET.11 on eth0" grep -q "eth0 *inet $SLURMTEST_SUBNET.11/24" "$SLURMTEST_DIR/probe.txt"
check "the node has no default route" sh -c "sed -n '/^route:/,\$p' '$SLURMTEST_DIR/probe.txt' | grep -qv route: && exit 1 || exit 0"

# --- refusals: each names the variable to change, and creates nothing ------------------------
refuse() {  # NAME VARIABLE ENV...: 'up 1' with ENV refuses with exit 4 and names VARIABLE
  local name=$1 variable=$2 out rc
  shift 2
  out=$(env "$@" "$cluster" up 1 2>&1)
  rc=$?
  echo "  $out"
  check "$name: refused (exit 4)" [ $rc = 4 ]
  check "$name: the message names $variable" grep -q "$variable" <<<"$out"
}
refuse "same state directory" SLURMTEST_DIR
refuse "same prefix" SLURMTEST_PREFIX SLURMTEST_DIR="$SLURMTEST_OTHER_DIR"
refuse "same subnet" SLURMTEST_SUBNET SLURMTEST_DIR="$SLURMTEST_OTHER_DIR" SLURMTEST_PREFIX="$SLURMTEST_OTHER_PREFIX"
refuse "same port" SLURMTEST_PORT SLURMTEST_DIR="$SLURMTEST_OTHER_DIR" SLURMTEST_PREFIX="$SLURMTEST_OTHER_PREFIX" \
  SLURMTEST_SUBNET="$SLURMTEST_OTHER_SUBNET"
check "the refusals created nothing" nothing_left "$SLURMTEST_OTHER_PREFIX" "$SLURMTEST_OTHER_DIR"
check "the running cluster is untouched" sh -c "'$cluster' status | grep -q '^node1 debug\* idle'"

# --- down -----------------------------------------------------------------------------------
cp -r "$SLURMTEST_DIR/pids" "$SLURMTEST_DIR.pids"
"$cluster" down
check "down succeeds" [ $? = 0 ]
rm -rf "$SLURMTEST_DIR/pids" && mv "$SLURMTEST_DIR.pids" "$SLURMTEST_DIR/pids"
check "down leaves nothing" nothing_left "$SLURMTEST_PREFIX" "$SLURMTEST_DIR"
rm -rf "$SLURMTEST_DIR/pids"
"$cluster" down >/dev/null 2>&1
check "a second down is harmless" [ $? = 0 ]

# --- a failing up tears down what it started -------------------------------------------------
for stage in slurmctld slurmd; do
  out=$(SLURMTEST_FAIL_AFTER=$stage "$cluster" up 2 2>&1)
  rc=$?
  echo "  ${out//$'\n'/$'\n'  }"
  check "up failing after $stage exits non-zero" [ $rc = 1 ]
  check "up failing after $stage says it tears down" grep -q "tearing down" <<<"$out"
  check "up failing after $stage leaves nothing" nothing_left "$SLURMTEST_PREFIX" "$SLURMTEST_DIR"
done

# --- without root: a loud refusal, not a skip -------------------------------------------------
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups env SLURMTEST_DIR=/tmp/runner-slurm-nobody-$$ "$cluster" up 1 2>&1)
rc=$?
echo "  $out"
check "not root: exit 3 (cannot host a cluster)" [ $rc = 3 ]
check "not root: the message says root is needed" grep -q "needs root" <<<"$out"

echo "cluster harness: $((SECONDS - t0)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
