#!/usr/bin/env bash
# The README's first command: install what the build needs, build dwell, start `dwell serve`
# on a temporary model store, make a demo model with dwell's own GGUF writer, create it in
# the store, ask it for an answer, stop the server. Exits 0 when all of that worked.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
dwell=$PWD/build/dwell

tmp=$(mktemp -d)
server=
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== dwell serve (temporary store $tmp/models)"
OLLAMA_HOST=127.0.0.1:0 OLLAMA_MODELS=$tmp/models "$dwell" serve >"$tmp/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/serve.log" | head -1)
  [[ -n "$port" ]] && break
  sleep 0.1
done
[[ -n "${port:-}" ]] || { cat "$tmp/serve.log"; echo "server did not start"; exit 1; }
export OLLAMA_HOST=127.0.0.1:$port
echo "listening on $OLLAMA_HOST"

echo "== dwell debug mkmodel (random weights, built-in vocabulary and chat template)"
"$dwell" debug mkmodel "$tmp/demo.gguf" --name demo

echo "== dwell create demo (uploads the GGUF, writes the manifest)"
printf 'FROM %s\nPARAMETER num_predict 24\nPARAMETER seed 1\n' "$tmp/demo.gguf" >"$tmp/Modelfile"
"$dwell" create demo -f "$tmp/Modelfile"

echo "== dwell run demo (random weights: the words are noise, the path is real)"
"$dwell" run demo "Why is the sky blue?" --keepalive 2m
echo "== dwell ps"
"$dwell" ps
echo "== dwell stats --no-stream"
"$dwell" stats --no-stream
echo "== dwell stop demo"
"$dwell" stop demo
"$dwell" ps

echo "== stop the server"
kill -TERM "$server"
wait "$server"
server=
echo "done"
