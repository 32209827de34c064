#!/usr/bin/env bash
# Builds store_load around the runner's store as it was at COMMIT, to measure two versions of the
# store in one interleaved run:
#   bench/store_baseline.sh COMMIT OUT        e.g. bench/store_baseline.sh 101cd6a build/store_load_old
#   build/bench/store_load --targets runner,baseline --baseline build/store_load_old ...
# Only the store's sources come from COMMIT (runner/store_*.cpp and what they include, and
# common/parse_int.cpp); the load generator is this tree's. Compiled directly with g++ -O2, as
# CMake's RelWithDebInfo does (about a minute on 2 cores; take the build lock on a shared machine).
set -euo pipefail
if [ "$#" -ne 2 ]; then
  echo "usage: bench/store_baseline.sh COMMIT OUT" >&2
  exit 2
fi
commit=$1
out=$(realpath -m "$2")
cd "$(dirname "$0")/.."
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
git archive "$commit" runner common | tar -x -C "$src"
g++ -std=c++17 -O2 -g -DNDEBUG -I "$src" -I . -o "$out" \
  "$src"/runner/store_{server,state,connection,protocol,socket,access}.cpp \
  "$src"/common/parse_int.cpp bench/store_load_{main,clients,server}.cpp -lpthread
echo "built $out: the store of $(git rev-parse --short "$commit")"
