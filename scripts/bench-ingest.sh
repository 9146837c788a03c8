#!/usr/bin/env bash
# Measures `censorwatch ingest` from real-shaped JSONL with fresh ids, into a fresh database each run.
#
#   scripts/bench-ingest.sh                 # 1 GiB input, 3 runs, SQLite
#   BENCH_MB=256 RUNS=5 scripts/bench-ingest.sh
#   MAX_BYTES=16384 scripts/bench-ingest.sh # only the corpus's measurements up to 16 KiB (mean 4.9 KB)
#   ORDERED=1 scripts/bench-ingest.sh       # measurement_start_time rewritten to advance 6 s a line,
#                                           # as a collector's stream or OONI's daily files arrive
#   DB=clickhouse://127.0.0.1:8123 scripts/bench-ingest.sh   # a fresh ClickHouse database per run
#
# The input repeats every line of testdata/ooni/real_measurements_combined.jsonl and the 50
# synthetic measurements, each copy with a fresh measurement_uid (so nothing is a duplicate).
# The corpus's mean is 41 KB (a few large measurements), its median 5.5 KB, and its times span
# 2014-2025 (without ORDERED, every ClickHouse batch writes into dozens of monthly partitions).
# Prints per run: seconds, MB/s, measurements/s, peak RSS; then the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${BENCH_MB:-1024}
RUNS=${RUNS:-3}
MAX_BYTES=${MAX_BYTES:-0}
ORDERED=${ORDERED:-0}
DB=${DB:-sqlite}
command -v /usr/bin/time >/dev/null || apt-get install -y time >/dev/null
echo "== building the release binary"
cargo build --release -q -p censorwatch
mkdir -p target/bench
input=target/bench/ingest-${MB}MiB-max${MAX_BYTES}-ordered${ORDERED}.jsonl
if [ ! -s "$input" ]; then
  echo "== generating $input"
  python3 - "$input" "$MB" "$MAX_BYTES" "$ORDERED" <<'PY'
import datetime, json, glob, re, sys
out, mb, max_bytes, ordered = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == '1'
lines = [l.strip() for l in open('testdata/ooni/real_measurements_combined.jsonl') if l.strip()]
lines += [json.dumps(json.load(open(f)), separators=(',', ':')) for f in sorted(glob.glob('testdata/ooni/synthetic/*.json'))]
if max_bytes:
    lines = [l for l in lines if len(l) <= max_bytes]
uid = re.compile(r'"measurement_uid"\s*:\s*"[^"]*"')
start = re.compile(r'"measurement_start_time"\s*:\s*"[^"]*"')
t0 = datetime.datetime(2024, 2, 1)
target, written, n = mb << 20, 0, 0
with open(out, 'w') as f:
    while written < target:
        for l in lines:
            new = f'"measurement_uid":"bench_{n:09d}"'
            l2 = uid.sub(new, l, count=1) if uid.search(l) else '{' + new + ',' + l[1:]
            if ordered:
                at = (t0 + datetime.timedelta(seconds=6 * n)).strftime('%Y-%m-%d %H:%M:%S')
                l2 = start.sub(f'"measurement_start_time":"{at}"', l2, count=1)
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
  dir=$(mktemp -d)
  if [ "$DB" = sqlite ]; then
    url="sqlite:$dir/bench.db"
  else
    database="cw_bench_ingest_$$_$i"
    url="${DB%/}/$database"
  fi
  /usr/bin/time -f '%e %M' -o target/bench/time.txt \
    ./target/release/censorwatch ingest "$input" --db "$url" --data "$dir" 2>/dev/null
  read -r secs kb < target/bench/time.txt
  rm -rf "$dir"
  if [ "$DB" != sqlite ]; then
    http="http://${DB#clickhouse://}"
    curl -s "${http%/}/" --data-binary "DROP DATABASE IF EXISTS $database" >/dev/null
  fi
  line=$(python3 -c "s=$secs; print(f'{s:.2f} {$bytes/s/1e6:.1f} {$n/s:.0f} {$kb/1024:.1f}')")
  results+=("$line")
  printf '%-4s %9s %9s %15s %13s\n' "$i" $line
done
printf '%s\n' "${results[@]}" | python3 -c "
import sys, statistics as st
rows=[list(map(float,l.split())) for l in sys.stdin if l.strip()]
m=[st.median(c) for c in zip(*rows)]
print(f'med  {m[0]:9.2f} {m[1]:9.1f} {m[2]:15.0f} {m[3]:13.1f}')"
