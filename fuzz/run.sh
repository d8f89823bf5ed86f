#!/usr/bin/env bash
# Runs every fuzz target (or the ones named as arguments) for FUZZ_SECONDS each (default 20)
# on the stable toolchain, one at a time, and prints the executions of each. Exits non-zero
# if any target crashed; the crashing input and the log are then in fuzz/artifacts/<target>/
#
# The committed seeds in corpus/<target>/ are only read: what libFuzzer finds goes to a
# temporary corpus that is removed on exit, as are the stores the store targets build.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-20}

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address); RUSTC_BOOTSTRAP=1 lets the
# stable compiler accept them.
export RUSTC_BOOTSTRAP=1

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

base=/dev/shm
[ -d "$base" ] || base=${TMPDIR:-/tmp}
work=$(mktemp -d "$base/ferromq-fuzz-run.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The store targets build their stores here (tmpfs when there is one).
export FERROMQ_FUZZ_DIR="$work/stores"

# One build of every target up front, so the timings below are fuzzing only.
cargo fuzz build

crashed=()
for target in "${targets[@]}"; do
  mkdir -p "$work/corpus/$target"
  log="$work/$target.log"
  start=$(date +%s)
  status=ok
  extra=()
  case "$target" in
    # The store's background threads outlive one input, and LeakSanitizer then blames the
    # input for their thread-local destructor registrations (32 bytes from
    # __cxa_thread_atexit_impl). The codec targets keep leak detection.
    consume_queue_unit | index_file | checkpoint | segment_recovery) extra=(-detect_leaks=0) ;;
  esac
  if ! cargo fuzz run "$target" "$work/corpus/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" \
    >"$log" 2>&1; then
    status=CRASHED
    crashed+=("$target")
  fi
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  printf '%-20s %-8s %10s executions in %ss\n' "$target" "$status" "${executions:-?}" \
    "$(($(date +%s) - start))"
  if [ "$status" != ok ]; then
    mkdir -p "artifacts/$target"
    cp "$log" "artifacts/$target/fuzz.log"
    grep -E -A2 'panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log" | head -n 12 >&2
    grep -E 'Test unit written|^Base64' "$log" >&2 || true
    echo "full log: fuzz/artifacts/$target/fuzz.log" >&2
  fi
done

if [ "${#crashed[@]}" -gt 0 ]; then
  echo "fuzz targets that crashed: ${crashed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
