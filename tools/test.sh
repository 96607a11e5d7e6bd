#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds a normal (-Werror) and an
# ASan+UBSan configuration, runs every test in both, runs the concurrency tests under
# ThreadSanitizer, then each fuzz target for a while.
#   DWELL_FUZZ_SECONDS  seconds per fuzz target (default 60; 0 skips fuzzing)
#   DWELL_JOBS          parallel build and test jobs (default: number of cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
jobs=${DWELL_JOBS:-$(nproc)}
fuzz_seconds=${DWELL_FUZZ_SECONDS:-60}
shared=${DWELL_SHARED:-$(cd .. && pwd)/shared}

if [[ -f tests/clients/package-lock.json ]]; then
  (cd tests/clients && npm ci --no-audit --no-fund --loglevel=error)
fi

status=0
run_suite() { # name, cmake args...
  local dir=$1; shift
  echo "== build $dir"
  cmake -S . -B "$dir" -DDWELL_SHARED="$shared" "$@" >/dev/null
  cmake --build "$dir" -j "$jobs" >/dev/null
  echo "== test $dir"
  ctest --test-dir "$dir" -j "$jobs" --output-on-failure || status=1
}
run_suite build -DDWELL_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_suite build-asan -DDWELL_WERROR=ON -DDWELL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug

# ThreadSanitizer over the concurrency tests (scheduler, store threads, the compute pool).
tsan_tests='unit/test_sched|unit/test_store_threads|kernels/test_kern_pool'
echo "== build build-tsan"
cmake -S . -B build-tsan -DDWELL_SHARED="$shared" -DDWELL_WERROR=ON -DDWELL_TSAN=ON \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-tsan -j "$jobs" --target test_sched_logic test_sched_engine \
  test_sched_obs test_store_threads test_kern_pool >/dev/null
echo "== test build-tsan ($tsan_tests)"
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan -j "$jobs" --output-on-failure \
  -R "$tsan_tests" || status=1

if [[ "$fuzz_seconds" != 0 ]] && ls tests/fuzz/fuzz_*.c >/dev/null 2>&1; then
  echo "== fuzz ($fuzz_seconds s per target)"
  CC=clang cmake -S . -B build-fuzz -DDWELL_FUZZ=ON -DDWELL_SANITIZE=ON \
    -DDWELL_SHARED="$shared" -DCMAKE_BUILD_TYPE=Debug >/dev/null
  for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    cmake --build build-fuzz -j "$jobs" --target "$name" >/dev/null
    corpus=build-fuzz/corpus-$name
    mkdir -p "$corpus"
    seeds=tests/fuzz/seeds-$name
    if ! build-fuzz/tests/$name -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
        -artifact_prefix=build-fuzz/ "$corpus" $( [[ -d $seeds ]] && echo "$seeds" ) \
        >build-fuzz/$name.log 2>&1; then
      echo "fuzz target $name found a problem:"; tail -40 build-fuzz/$name.log; status=1
    else
      tail -1 build-fuzz/$name.log
    fi
  done
fi
exit $status
