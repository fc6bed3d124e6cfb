#!/usr/bin/env bash
# CI for the C++ runtime (engines/):
#   1. Python reference fixtures from the bundled real images (once, shared by both builds)
#   2. release build + ctest
#   3. AddressSanitizer + UBSan build + ctest
#   4. TensorRT runtime + tools compile check against every TensorRT include folder given in
#      TENSORRT_INCLUDE_DIRS (colon-separated, e.g. the v10.3.0 and v11.1 headers) or found on the system
# Ends with a summary that says plainly what was compiled and what was not.
# Env: BUILD_DIR (default build/engines-ci), JOBS (default 2), SKIP_ASAN=1, SKIP_RELEASE=1.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${BUILD_DIR:-$ROOT/build/engines-ci}"
JOBS="${JOBS:-2}"
FIXTURES="$BUILD/fixtures"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
mkdir -p "$BUILD"
summary=()
start=$(date +%s)

echo "== fixtures (Python reference on real images)"
set +e
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" python3 "$ROOT/engines/tests/make_fixtures.py" --out "$FIXTURES"
rc=$?
set -e
case $rc in
  0) summary+=("fixtures: generated ($FIXTURES)");;
  77) summary+=("fixtures: SKIPPED (Python deps missing): fixture-based tests are skipped");;
  *) echo "fixture generation failed ($rc)"; exit $rc;;
esac

run_suite() {  # name, extra cmake args...
  local name=$1; shift
  local dir="$BUILD/$name"
  echo "== $name: configure + build + ctest"
  cmake -S "$ROOT/engines" -B "$dir" "${GEN[@]}" -DYOLACT_ENGINES_WERROR=ON -DYOLACT_ENGINES_TOOLS=OFF \
        -DYOLACT_FIXTURES_DIR="$FIXTURES" "$@" | grep -E "yolact engines" || true
  cmake --build "$dir" -j "$JOBS"
  # The fixture step is cheap when up to date (stamp check).
  (cd "$dir" && ctest --output-on-failure -j 1)
  summary+=("$name: ctest passed")
}

[ "${SKIP_RELEASE:-0}" = 1 ] || run_suite release -DCMAKE_BUILD_TYPE=Release
[ "${SKIP_ASAN:-0}" = 1 ] || run_suite asan -DCMAKE_BUILD_TYPE=Debug -DYOLACT_SANITIZE=ON

echo "== TensorRT runtime compile check"
dirs=()
IFS=: read -r -a dirs <<< "${TENSORRT_INCLUDE_DIRS:-}"
for d in /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu /usr/local/TensorRT/include /usr/src/tensorrt/include; do
  [ -f "$d/NvInferRuntime.h" ] && dirs+=("$d")
done
compiled=0
for inc in "${dirs[@]}"; do
  [ -n "$inc" ] || continue
  if [ ! -f "$inc/NvInferRuntime.h" ]; then
    summary+=("TensorRT runtime: NOT COMPILED against $inc (no NvInferRuntime.h there)")
    continue
  fi
  tag=$(echo "$inc" | tr '/' '_')
  dir="$BUILD/trt$tag"
  out=$(cmake -S "$ROOT/engines" -B "$dir" "${GEN[@]}" -DYOLACT_ENGINES_WERROR=ON -DYOLACT_ENGINES_TESTS=OFF \
        -DTENSORRT_INCLUDE_DIR="$inc" | grep -E "yolact engines: (TensorRT|yolact_infer)" || true)
  echo "$out"
  if ! echo "$out" | grep -q "TensorRT runtime: COMPILED"; then
    summary+=("TensorRT runtime: NOT COMPILED against $inc: $(echo "$out" | head -1 | sed 's/.*runtime: //')")
    continue
  fi
  targets=(yolact_runtime_objs yolact_triton_preload)
  if echo "$out" | grep -q "COMPILED and LINKED"; then targets=(yolact_runtime yolact_infer yolact_server embed_example yolact_triton_preload); else targets+=(yolact_infer_objs yolact_server_objs embed_example_objs); fi
  cmake --build "$dir" -j "$JOBS" --target "${targets[@]}"
  # The preload shim must load into any process and fail politely (missing library / TensorRT).
  msg=$(YOLACT_PLUGINS_LIB=/nonexistent/libyolact_plugins.so LD_PRELOAD="$dir/libyolact_triton_preload.so" /bin/true 2>&1)
  echo "$msg" | grep -Eq "plugins not registered|could not load /nonexistent" || { echo "preload shim check failed: $msg"; exit 1; }
  ver=$(echo "$out" | sed -n 's/.*TensorRT \([0-9.]*\).*/\1/p' | head -1)
  summary+=("TensorRT runtime + tools + Triton preload shim: COMPILED against TensorRT $ver headers ($inc)$(echo "$out" | grep -q 'NOT LINKED' && echo '; runtime and tools not linked: no libnvinfer; preload shim linked and load-tested')")
  compiled=$((compiled + 1))
done
if [ $compiled = 0 ]; then
  summary+=("TensorRT runtime + tools: NOT COMPILED: no TensorRT headers (set TENSORRT_INCLUDE_DIRS=dir1:dir2)")
fi

echo
echo "== engines CI summary ($(( $(date +%s) - start ))s)"
printf '  %s\n' "${summary[@]}"
