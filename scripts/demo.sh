#!/usr/bin/env bash
# A real sandbox, end to end: what `make demo` shows. Uses its own state dir unless WARREN_HOME is set.
set -euo pipefail
cd "$(dirname "$0")/.."
export WARREN_HOME="${WARREN_HOME:-$PWD/.warren-demo}"
w() { echo "\$ warren $*" >&2; node dist/src/cli/main.js "$@"; }

w doctor
w run -- uname -a
name="demo-$$"
w create --name "$name" --memory 256 --label demo=yes
w exec "$name" -- sh -c 'echo "hello from $(hostname), uid $(id -u)" | tee /workspace/hello.txt'
w exec "$name" -- sh -c 'cat /proc/net/dev | tail -n +3 | cut -d: -f1; touch /usr/x 2>&1 || true'
w stop "$name"
w start "$name"
w exec "$name" -- cat /workspace/hello.txt
w logs "$name" --no-output
w rm "$name"
echo "demo done: state in $WARREN_HOME" >&2
