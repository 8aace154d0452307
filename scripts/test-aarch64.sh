#!/usr/bin/env bash
# deno task test:aarch64 [--e2e-only]: the aarch64 Linux build, proven on an x86_64 machine.
# Installs what it needs (Debian: qemu-user, libc6-arm64-cross, libgcc-s1-arm64-cross; npm:
# @deno/linux-arm64-glibc, the official aarch64 Deno, of the same version as this deno, into
# a cache directory), then runs under `qemu-aarch64 -L /usr/aarch64-linux-gnu`:
#   1. the end-to-end conformance check (tests/aarch64_conformance.ts): main.ts under the
#      aarch64 Deno and under x86_64 Deno, every vector frame over TCP, outputs byte-identical;
#   2. unless --e2e-only, the protocol unit tests (frames, envelope, decode, json) and the event
#      id's WebAssembly SHA-256 (V8's WASM SIMD on arm64).
# Both Denos share DENO_DIR: the npm packages in its cache are JavaScript, and the aarch64 Deno
# reuses the modules the x86_64 one already fetched (so nothing is downloaded at test time).
set -uo pipefail
cd "$(dirname "$0")/.."
export NO_COLOR=1 DENO_NO_UPDATE_CHECK=1
cache="${VMQ_SIDECAR_AARCH64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmq-sidecar-aarch64}"
sysroot=/usr/aarch64-linux-gnu
version=$(deno --version | head -1 | awk '{print $2}')

need=()
command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
[ -e "$sysroot/lib/ld-linux-aarch64.so.1" ] || need+=(libc6-arm64-cross)
[ -e "$sysroot/lib/libgcc_s.so.1" ] || need+=(libgcc-s1-arm64-cross)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null 2>&1 \
    || { echo "cannot install ${need[*]}"; exit 1; }
fi

bin="$cache/node_modules/@deno/linux-arm64-glibc/deno"
deno_aarch64="$cache/deno-aarch64"
if ! grep -qs "\"version\": \"$version\"" "$cache/node_modules/@deno/linux-arm64-glibc/package.json"; then
  echo "installing @deno/linux-arm64-glibc@$version into $cache"
  mkdir -p "$cache"
  # --force: npm refuses a package for another CPU otherwise (--cpu=arm64 does not lift that).
  npm install --prefix "$cache" --no-save --no-audit --no-fund --force \
    "@deno/linux-arm64-glibc@$version" >/dev/null 2>&1 \
    || { echo "cannot install @deno/linux-arm64-glibc@$version from npm"; exit 1; }
fi
printf '#!/bin/sh\nexec qemu-aarch64 -L %s %s "$@"\n' "$sysroot" "$bin" >"$deno_aarch64"
chmod +x "$deno_aarch64"
"$deno_aarch64" --version | head -1 || { echo "the aarch64 deno does not run under qemu"; exit 1; }

status=0
start=$SECONDS
VMQ_SIDECAR_AARCH64_DENO="$deno_aarch64" deno test -P=test tests/aarch64_conformance.ts || status=1
echo "aarch64 end-to-end conformance: $((SECONDS - start)) s"
if [ "${1:-}" != "--e2e-only" ]; then
  start=$SECONDS
  # Type checking is the same on every CPU (deno task check does it); only run here.
  "$deno_aarch64" test --no-check -P=test tests/frame_reader_test.ts tests/envelope_test.ts \
    tests/event_decoder_test.ts tests/json_writer_test.ts tests/event_id_test.ts || status=1
  echo "aarch64 protocol unit tests: $((SECONDS - start)) s"
fi
exit $status
