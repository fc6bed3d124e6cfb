#!/usr/bin/env bash
# Builds the plugin libraries into <build-dir>/lib (default build/plugins/lib):
#   libyolact_plugins_cpu.so  always (CPU instance, C API for Python and ONNX Runtime)
#   libyolact_plugins_cuda.so when nvcc is found (CUDA instance, same C API, no TensorRT)
#   libyolact_plugins.so, libyolact_plugins_static.so  when nvcc and TensorRT headers are found
#                             (TensorRT plugins: loadLibrary / registration on dlopen, plugins/README.md)
# Usage: scripts/build_plugins.sh [--trt-include DIR] [--archs "87"] [--asan] [--cpu-only]
#                                 [--build-dir DIR] [-j N]
# Point Python at the result with YOLACT_PLUGINS_DIR=<build-dir>/lib (build/plugins/lib is searched
# by default).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build/plugins"
jobs=2
args=(-DCMAKE_BUILD_TYPE=Release -DYOLACT_BUILD_ENGINES=OFF)
while [ $# -gt 0 ]; do
  case "$1" in
    --trt-include) args+=("-DTENSORRT_INCLUDE_DIR=$2"); shift 2 ;;
    --archs) args+=("-DYOLACT_CUDA_ARCHS=$2"); shift 2 ;;
    --asan) args+=(-DYOLACT_SANITIZE=ON); shift ;;
    --cpu-only) args+=(-DYOLACT_ENABLE_CUDA=OFF); shift ;;
    --build-dir) build="$2"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "build_plugins.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
command -v cmake >/dev/null || { echo "build_plugins.sh: cmake not found" >&2; exit 2; }
gen=()
if command -v ninja >/dev/null && [ ! -f "$build/CMakeCache.txt" ]; then gen=(-G Ninja); fi
cmake -S "$root" -B "$build" "${gen[@]}" "${args[@]}"
cmake --build "$build" -j "$jobs"
cat "$build/yolact_plugins_wrappers.txt"
echo "libraries: $(ls "$build"/lib/*.so | tr '\n' ' ')"
