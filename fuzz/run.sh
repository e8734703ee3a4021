#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600), one after another, on the
# stable toolchain (no sanitizer), then minimises each corpus. Not run by CI.
#   cargo install cargo-fuzz && bash fuzz/run.sh 600
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
for target in standard_response partner_response error_body jwt spec_loader; do
  cargo fuzz run -s none "$target" "corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1 2>&1 \
    | grep -E "^(stat::|Done|#[0-9]+ +DONE|==|SUMMARY|panicked)" | sed "s/^/$target: /"
  cargo fuzz cmin -s none "$target" "corpus/$target" >/dev/null 2>&1
done
