#!/usr/bin/env bash
# Runs unmodified RocketMQ clients against a standalone ferromq broker (name server
# in-process on 127.0.0.1:9876, broker on 127.0.0.1:10911, store in a temporary directory):
#   - ali-ons 3.12.0 (npm, pure JavaScript)
#   - Apache rocketmq-client-cpp through the PyPI `rocketmq` 0.4.4 binding
#   - rocketmq-client-rust 1.0.0 (crates.io), only with INTEROP_RUST=1 (a long build)
# Each produces messages with tags and keys, consumes them all back with a push consumer and
# (JS, C++) fails one delivery once so that it returns through the broker's retry path.
# A client whose package cannot be installed here is skipped with a notice; a client that
# runs and loses messages fails the script. Usage: interop/run.sh [count]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-40}
work=${INTEROP_DIR:-/tmp/ferromq-interop}
mkdir -p "$work"
data=$(mktemp -d)
cargo build --release -p ferromq-broker
(cd "$data" && RUST_LOG=warn exec "$OLDPWD/target/release/ferromq-broker" >"$data/broker.log" 2>&1) &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/10911) 2>/dev/null && break
  sleep 0.1
done
failed=0
ran=0

if command -v node >/dev/null && command -v npm >/dev/null; then
  mkdir -p "$work/node"
  if (cd "$work/node" && { [ -d node_modules/ali-ons ] || npm install --no-audit --no-fund ali-ons@3.12.0 urllib >/dev/null 2>&1; }); then
    ran=$((ran + 1))
    cp interop/ali_ons.js "$work/node/"
    if (cd "$work/node" && timeout 180 node ali_ons.js 127.0.0.1:9876 "$count" >"$work/ali_ons.log" 2>&1); then
      grep "interop:" "$work/ali_ons.log"
    else
      failed=1
      tail -20 "$work/ali_ons.log"
    fi
  else
    echo "SKIP ali-ons: npm install failed"
  fi
else
  echo "SKIP ali-ons: node/npm not installed"
fi

if command -v python3 >/dev/null; then
  if [ -x "$work/py/bin/python" ] || { python3 -m venv "$work/py" && "$work/py/bin/pip" install -q rocketmq==0.4.4; } >/dev/null 2>&1; then
    ran=$((ran + 1))
    if timeout 180 "$work/py/bin/python" interop/rocketmq_cpp.py 127.0.0.1:9876 "$count" >"$work/cpp.log" 2>&1; then
      grep "interop:" "$work/cpp.log"
    else
      failed=1
      tail -20 "$work/cpp.log"
    fi
  else
    echo "SKIP rocketmq-client-cpp: pip install rocketmq==0.4.4 failed"
  fi
else
  echo "SKIP rocketmq-client-cpp: python3 not installed"
fi

if [ "${INTEROP_RUST:-0}" = 1 ]; then
  mkdir -p "$work/rust/src"
  cp interop/rust/Cargo.toml "$work/rust/"
  cp interop/rust/main.rs "$work/rust/src/main.rs"
  (cd "$work/rust" && CARGO_TARGET_DIR="$work/rust/target" cargo build --release -q) &&
    { ran=$((ran + 1)); timeout 180 "$work/rust/target/release/interop-rust" 127.0.0.1:9876 "$count" >"$work/rust.log" 2>&1 && grep "interop:" "$work/rust.log" || { failed=1; tail -20 "$work/rust.log"; }; }
fi

echo "interop: $ran client(s) ran, failed=$failed"
exit $failed
