#!/usr/bin/env bash
# Cached answers through the token broker beside the embedded mock's own answers, in one
# run: wrk at 1, 16 and 64 connections against each, requests/s and p50/p99. Not a test:
# the figures and the command are in BENCHMARKS.md ("Token broker throughput").
#
#   cargo build --release -p vipps-token-cli && benches/wrk/broker.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${VIPPS_TOKEN_BIN:-target/release/vipps-token}
seconds=${1:-10}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }

out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT

"$bin" mock --addr 127.0.0.1:0 >"$out/mock" 2>&1 &
until grep -q 'http://' "$out/mock" 2>/dev/null; do sleep 0.05; done
mock=$(grep -o 'http://127[^ ]*' "$out/mock" | head -1)

"$bin" serve --addr 127.0.0.1:0 --upstream "$mock" --no-cache >"$out/broker" 2>"$out/broker.err" &
until [ -s "$out/broker" ]; do sleep 0.05; done
broker=$(head -1 "$out/broker")

# One request first, so that every measured answer through the broker is a cached one.
curl -sf -X POST "$broker/accesstoken/get" \
  -H 'client_id: fb492b5e-7907-4d83-ba20-c7fb60ca35de' \
  -H 'client_secret: Y8Kteew6GE2ZmeycEt6egg==' \
  -H 'Ocp-Apim-Subscription-Key: 0f14ebcab0ec4b29ae0cb90d91b4a84a' >/dev/null

printf '%-7s %5s %12s %10s %10s %8s\n' target conns "requests/s" p50 p99 non2xx
for connections in 1 16 64; do
  threads=$(( connections < 2 ? 1 : 2 ))
  for target in mock broker; do
    url=${!target}
    wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency \
      -s benches/wrk/standard.lua "$url/accesstoken/get" >"$out/wrk"
    rps=$(awk '/^Requests\/sec/ {print $2}' "$out/wrk")
    p50=$(awk '$1 == "50%" {print $2}' "$out/wrk")
    p99=$(awk '$1 == "99%" {print $2}' "$out/wrk")
    bad=$(awk '/Non-2xx/ {print $NF}' "$out/wrk")
    printf '%-7s %5s %12s %10s %10s %8s\n' "$target" "$connections" "$rps" "$p50" "$p99" "${bad:-0}"
  done
done
