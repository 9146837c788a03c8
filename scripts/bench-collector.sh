#!/usr/bin/env bash
# Collector load benchmark: runs crates/server/examples/loadgen.rs (tokio + hyper client, N
# keep-alive connections on loopback, real OONI fixtures with fresh uids, POST
# /api/v1/submit_measurement, SQLite synchronous=FULL with group commit) RUNS times and prints
# each run and the medians. Every run fails if an acknowledged submission is missing from the
# store.
#
#   scripts/bench-collector.sh [RUNS] [-- loadgen options: --connections N --count N --seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
shift || true
[ "${1:-}" = "--" ] && shift
cargo build --release -q -p censorwatch-server --example loadgen
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for i in $(seq "$runs"); do
    target/release/examples/loadgen "$@" | tee -a "$out"
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { grep -o "$1=[0-9.]*" "$out" | cut -d= -f2 | median; }
echo "median of $runs runs: submissions/s=$(field 'submissions/s') p50=$(field p50)ms p99=$(field p99)ms errors=$(field errors) loss=$(field loss)"
