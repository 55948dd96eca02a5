#!/usr/bin/env bash
# Installs what Warren needs on Debian 12 (as root), then builds it. Idempotent: a second run
# only checks. Used by `make demo` and `make test` (and so by CI).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pair in bwrap:bubblewrap nsenter:util-linux setpriv:util-linux debootstrap:debootstrap; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
# microvm driver: QEMU (virtiofsd is in qemu-system-common), qemu-img; gcc and a static libc build its guest agent.
for pair in qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mkfs.ext4:e2fsprogs gcc:gcc; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need_apt+=(libc6-dev)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: need root to install: ${need_apt[*]} (run as root, or install them yourself)" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# The debian-bookworm-vm environment takes its kernel from apt: the package lists must be there.
if [ "$(id -u)" = 0 ] && ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then apt-get update -qq; fi

# better-sqlite3 has no reachable prebuilt binary here; node-gyp builds it against Node's headers.
if [ ! -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies (builds better-sqlite3, about a minute the first time)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ ! -f dist/src/cli/main.js ] || [ -n "$(find src test bench -newer dist/src/cli/main.js -name '*.ts' -print -quit)" ]; then
  echo "setup: building"
  npx tsc -p tsconfig.json
  chmod +x dist/src/cli/main.js
fi
