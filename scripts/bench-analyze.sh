#!/usr/bin/env bash
# Measures `censorwatch analyze --json` on ~1 GiB of web_connectivity JSONL, pinned to one core.
#
#   scripts/bench-analyze.sh            # 5 runs on target/bench/big.jsonl (made if absent)
#   BENCH_MB=256 RUNS=3 CPU=1 scripts/bench-analyze.sh
#
# The input repeats the web_connectivity lines of testdata/ooni/real_measurements_combined.jsonl
# and the 50 testdata/ooni/synthetic/*.json measurements (compacted to one line each). Prints, per
# run, seconds, MB/s, measurements/s and peak RSS, then the medians. Needs python3, taskset and
# GNU time (/usr/bin/time; `apt-get install time` if missing).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_MB=${BENCH_MB:-1024}
RUNS=${RUNS:-5}
CPU=${CPU:-0}
OUT_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/bench
BIG=$OUT_DIR/big-${BENCH_MB}MiB.jsonl

for tool in python3 taskset; do
    command -v "$tool" >/dev/null || { echo "bench-analyze: $tool is missing; install it" >&2; exit 1; }
done
if [ ! -x /usr/bin/time ]; then
    echo "bench-analyze: /usr/bin/time is missing; installing GNU time" >&2
    apt-get install -y time >/dev/null || { echo "bench-analyze: run 'apt-get install time'" >&2; exit 1; }
fi

echo "== building the release binary" >&2
cargo build --release -p censorwatch --bin censorwatch >&2
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/censorwatch

mkdir -p "$OUT_DIR"
if [ ! -s "$BIG" ]; then
    echo "== generating $BIG (~$BENCH_MB MiB)" >&2
    python3 - "$ROOT/testdata/ooni" "$BIG" "$BENCH_MB" <<'PY'
import glob, json, os, sys
src, dest, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = []
with open(os.path.join(src, "real_measurements_combined.jsonl"), encoding="utf-8") as f:
    for raw in f:
        if raw.strip():
            m = json.loads(raw)
            if m.get("test_name") == "web_connectivity":
                lines.append(json.dumps(m, separators=(",", ":"), ensure_ascii=False))
for path in sorted(glob.glob(os.path.join(src, "synthetic", "*.json"))):
    with open(path, encoding="utf-8") as f:
        lines.append(json.dumps(json.load(f), separators=(",", ":"), ensure_ascii=False))
block = ("\n".join(lines) + "\n").encode("utf-8")
target = mib << 20
tmp = dest + ".tmp"
with open(tmp, "wb") as f:
    written = 0
    while written < target:
        f.write(block)
        written += len(block)
os.replace(tmp, dest)
print(f"{len(lines)} distinct web_connectivity lines, {len(block)} bytes per repeat, "
      f"{written} bytes, {written // len(block) * len(lines)} measurements", file=sys.stderr)
PY
fi

SIZE=$(stat -c %s "$BIG")
echo "== input: $BIG ($SIZE bytes); $RUNS runs on CPU $CPU" >&2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
printf '%-4s %9s %9s %14s %13s\n' run seconds MB/s measurements/s "peak RSS MiB"
for i in $(seq 1 "$RUNS"); do
    taskset -c "$CPU" /usr/bin/time -f '%e %M' -o "$TMP/time" \
        "$BIN" analyze --json "$BIG" >/dev/null 2>"$TMP/stderr" || {
        echo "bench-analyze: censorwatch failed:" >&2; cat "$TMP/stderr" >&2; exit 1; }
    read -r secs rss_kb <"$TMP/time"
    measurements=$(grep -o '[0-9]* measurements' "$TMP/stderr" | head -1 | cut -d' ' -f1)
    python3 - "$i" "$secs" "$rss_kb" "$SIZE" "$measurements" >>"$TMP/rows" <<'PY'
import sys
i, secs, rss_kb, size, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
secs = max(secs, 0.01)
print(i, secs, size / 1e6 / secs, n / secs, rss_kb / 1024)
PY
    tail -1 "$TMP/rows" | awk '{printf "%-4s %9.2f %9.1f %14.0f %13.1f\n", $1, $2, $3, $4, $5}'
done
python3 - "$TMP/rows" <<'PY'
import statistics, sys
rows = [list(map(float, l.split()[1:])) for l in open(sys.argv[1])]
med = [statistics.median(col) for col in zip(*rows)]
print(f"{'med':<4} {med[0]:9.2f} {med[1]:9.1f} {med[2]:14.0f} {med[3]:13.1f}")
PY
