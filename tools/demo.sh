#!/usr/bin/env bash
# The README's first command: install what the build needs, build dwell, make a demo model
# with dwell's own GGUF writer and have dwell generate from it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./build/dwell debug mkmodel "$tmp/demo.gguf"
./build/dwell debug generate "$tmp/demo.gguf" --tokens 1,2,3 -n 16
