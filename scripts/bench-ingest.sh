#!/usr/bin/env bash
# Measures `censorwatch ingest` into a fresh SQLite database from real-shaped JSONL with fresh ids.
#
#   scripts/bench-ingest.sh                 # 1 GiB input, 3 runs
#   BENCH_MB=256 RUNS=5 scripts/bench-ingest.sh
#
# The input repeats every line of testdata/ooni/real_measurements_combined.jsonl and the 50
# synthetic measurements, each copy with a fresh measurement_uid (so nothing is a duplicate).
# Prints per run: seconds, MB/s, measurements/s, peak RSS; then the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${BENCH_MB:-1024}
RUNS=${RUNS:-3}
command -v /usr/bin/time >/dev/null || apt-get install -y time >/dev/null
echo "== building the release binary"
cargo build --release -q -p censorwatch
mkdir -p target/bench
input=target/bench/ingest-${MB}MiB.jsonl
if [ ! -s "$input" ]; then
  echo "== generating $input"
  python3 - "$input" "$MB" <<'PY'
import json, glob, re, sys
out, mb = sys.argv[1], int(sys.argv[2])
lines = [l.strip() for l in open('testdata/ooni/real_measurements_combined.jsonl') if l.strip()]
lines += [json.dumps(json.load(open(f)), separators=(',', ':')) for f in sorted(glob.glob('testdata/ooni/synthetic/*.json'))]
uid = re.compile(r'"measurement_uid"\s*:\s*"[^"]*"')
target, written, n = mb << 20, 0, 0
with open(out, 'w') as f:
    while written < target:
        for l in lines:
            new = f'"measurement_uid":"bench_{n:09d}"'
            l2 = uid.sub(new, l, count=1) if uid.search(l) else '{' + new + ',' + l[1:]
            f.write(l2); f.write('\n'); written += len(l2) + 1; n += 1
print(f"{n} measurements, {written} bytes")
PY
fi
bytes=$(stat -c %s "$input")
n=$(wc -l < "$input")
echo "== input: $input ($bytes bytes, $n measurements); $RUNS runs"
printf '%-4s %9s %9s %15s %13s\n' run seconds MB/s measurements/s 'peak RSS MiB'
results=()
for i in $(seq 1 "$RUNS"); do
  db=$(mktemp -d)/bench.db
  /usr/bin/time -f '%e %M' -o target/bench/time.txt ./target/release/censorwatch ingest "$input" --db "sqlite:$db" 2>/dev/null
  read -r secs kb < target/bench/time.txt
  rm -rf "$(dirname "$db")"
  line=$(python3 -c "s=$secs; print(f'{s:.2f} {$bytes/s/1e6:.1f} {$n/s:.0f} {$kb/1024:.1f}')")
  results+=("$line")
  printf '%-4s %9s %9s %15s %13s\n' "$i" $line
done
printf '%s\n' "${results[@]}" | python3 -c "
import sys, statistics as st
rows=[list(map(float,l.split())) for l in sys.stdin if l.strip()]
m=[st.median(c) for c in zip(*rows)]
print(f'med  {m[0]:9.2f} {m[1]:9.1f} {m[2]:15.0f} {m[3]:13.1f}')"
