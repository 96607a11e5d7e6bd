#!/usr/bin/env bash
# Installs what dwell's build and tests need on Debian 12 (run as root, as CI is).
# Quick when everything is already there: it only calls apt-get for missing packages.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libedit-dev libssl-dev
      python3 nodejs npm curl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# The machine's own Node 20 and npm may come from outside Debian's packages: keep them.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
