#!/usr/bin/env bash
# CI for the C++ runtime (engines/):
#   1. Python reference fixtures from the bundled real images (once, shared by both builds)
#   2. release build + ctest
#   3. AddressSanitizer + UBSan build + ctest
#   4. libFuzzer (clang, ASan + UBSan): the service's request handling and the sidecar parsing,
#      FUZZ_SECONDS each (default 60), seeded with real sidecars and requests
#   5. TensorRT runtime + tools compile check against every TensorRT include folder given in
#      TENSORRT_INCLUDE_DIRS (colon-separated, e.g. the v10.3.0 and v11.1 headers) or found on the system,
#      with a check that the runtime calls initLibNvInferPlugins and links libnvinfer_plugin
# Ends with a summary that says plainly what was compiled and what was not.
# Needs the Debian/Ubuntu packages of the README ("C++ runtime"); .ci/run installs them.
# Env: BUILD_DIR (default build/engines-ci), JOBS (default 2), SKIP_ASAN=1, SKIP_RELEASE=1, SKIP_FUZZ=1,
#      FUZZ_SECONDS.
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

fuzz() {  # name, seconds, max_len, seed files...
  local name=$1 secs=$2 len=$3; shift 3
  local corpus="$BUILD/fuzz/corpus-$name" seeds="$BUILD/fuzz/seeds-$name"
  mkdir -p "$corpus" "$seeds"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$seeds/"; done
  echo "== fuzz $name (${secs}s)"
  (cd "$BUILD/fuzz" && "$BUILD/fuzz/tests/fuzz/$name" -max_total_time="$secs" -max_len="$len" -timeout=10 \
      -print_final_stats=1 "$corpus" "$seeds" 2>&1 | grep -E "^(stat::number_of_executed_units|Done|==[0-9]+==ERROR)|SUMMARY" || true)
  local crashes
  crashes=$(find "$BUILD/fuzz" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \) | wc -l)
  if [ "$crashes" != 0 ]; then echo "fuzz $name found $crashes failing inputs in $BUILD/fuzz"; exit 1; fi
  summary+=("fuzz $name: ${secs}s under ASan/UBSan, no crash")
}

if [ "${SKIP_FUZZ:-0}" != 1 ] && command -v clang++ >/dev/null; then
  echo "== fuzz targets: configure + build (clang, libFuzzer)"
  CC=clang CXX=clang++ cmake -S "$ROOT/engines" -B "$BUILD/fuzz" "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DYOLACT_FUZZ=ON -DYOLACT_ENGINES_TESTS=OFF -DYOLACT_ENGINES_TOOLS=OFF -DYOLACT_ENGINES_WERROR=ON >/dev/null
  cmake --build "$BUILD/fuzz" -j "$JOBS"
  rm -f "$BUILD/fuzz"/crash-* "$BUILD/fuzz"/leak-* "$BUILD/fuzz"/timeout-*
  secs=${FUZZ_SECONDS:-60}
  fuzz fuzz_sidecar "$secs" 65536 "$FIXTURES"/sidecar_*.json
  req="$BUILD/fuzz/requests"
  mkdir -p "$req"
  printf 'GET /health HTTP/1.1\r\nHost: a\r\n\r\nGET /v1/model HTTP/1.1\r\n\r\n' > "$req/get"
  printf 'POST /v1/detect?score_threshold=0.3&top_k=2&masks=1 HTTP/1.1\r\nContent-Type: image/x-portable-pixmap\r\nContent-Length: 23\r\n\r\nP6\n2 2\n255\nAAAABBBBCCCC' > "$req/ppm"
  printf 'POST /v1/detect HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: image/png\r\n\r\n5\r\nhello\r\n0\r\n\r\n' > "$req/chunked"
  printf 'GET /health HTTP/1.1\r\nX-Pad: aaaaaaaaaaaaaaaaaaaa\r\n\r\nPOST /v1/detect HTTP/1.1\r\nContent-Length: 0\r\n\r\n' > "$req/pipelined"
  fuzz fuzz_http "$secs" 8192 "$req"/*
else
  summary+=("fuzz: SKIPPED (${SKIP_FUZZ:+SKIP_FUZZ=1}$(command -v clang++ >/dev/null || echo 'no clang++'))")
fi

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
  # DCN engines need NVIDIA's plugins: the runtime must call initLibNvInferPlugins ...
  obj=$(find "$dir" -name 'tensorrt_engine.cpp.o' | head -1)
  nm "$obj" | grep -q ' U initLibNvInferPlugins' || { echo "tensorrt_engine.cpp does not call initLibNvInferPlugins"; exit 1; }
  # ... and link libnvinfer_plugin: configure once against stub libraries and read the link line.
  stub="$dir/stub-lib"
  mkdir -p "$stub"
  echo 'void yolact_stub(void) {}' > "$stub/stub.c"
  for lib in nvinfer nvinfer_plugin; do cc -shared -o "$stub/lib$lib.so" "$stub/stub.c"; done
  cmake -S "$ROOT/engines" -B "$dir/linkcheck" "${GEN[@]}" -DYOLACT_ENGINES_TESTS=OFF -DTENSORRT_INCLUDE_DIR="$inc" \
        -DTENSORRT_LIB_DIR="$stub" >/dev/null
  grep -rqs "libnvinfer_plugin.so" "$dir/linkcheck/build.ninja" "$dir/linkcheck/CMakeFiles/yolact_infer.dir/link.txt" ||
    { echo "yolact_infer is not linked against libnvinfer_plugin"; exit 1; }
  # The preload shim must load into any process and fail politely (missing library / TensorRT).
  msg=$(YOLACT_PLUGINS_LIB=/nonexistent/libyolact_plugins.so LD_PRELOAD="$dir/libyolact_triton_preload.so" /bin/true 2>&1)
  echo "$msg" | grep -Eq "plugins not registered|could not load /nonexistent" || { echo "preload shim check failed: $msg"; exit 1; }
  ver=$(echo "$out" | sed -n 's/.*TensorRT \([0-9.]*\).*/\1/p' | head -1)
  summary+=("TensorRT runtime + tools + Triton preload shim: COMPILED against TensorRT $ver headers ($inc)$(echo "$out" | grep -q 'NOT LINKED' && echo '; runtime and tools not linked: no libnvinfer; preload shim linked and load-tested'); initLibNvInferPlugins called, libnvinfer_plugin on the link line")
  compiled=$((compiled + 1))
done
if [ $compiled = 0 ]; then
  summary+=("TensorRT runtime + tools: NOT COMPILED: no TensorRT headers (set TENSORRT_INCLUDE_DIRS=dir1:dir2)")
fi

echo
echo "== engines CI summary ($(( $(date +%s) - start ))s)"
printf '  %s\n' "${summary[@]}"
