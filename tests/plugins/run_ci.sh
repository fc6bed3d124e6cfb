#!/usr/bin/env bash
# CI of the TensorRT plugins (plugins/). Called from .ci/run; exits non-zero on any failure.
#  1. CPU instance: build (no CUDA), ctest
#  2. pytest tests/plugins: CPU instance vs yolact_deploy.ops (>= 500 cases per plugin), ONNX Runtime
#     custom ops, TensorRT engines (those skip without a GPU and TensorRT, saying why)
#  3. AddressSanitizer: ctest (with leak checks) and the CPU-vs-ops pytest under LD_PRELOAD=libasan
#  4. nvcc: the CUDA units for the default targets (sm_75/80/86/87/89/90 + PTX 90), warnings as
#     errors; cuobjdump (PyPI nvidia-cuda-cuobjdump) lists the SASS/PTX of the objects and the step
#     fails on a missing family; then the CUDA host path (launches, Thrust/CUB dispatch, workspace
#     carving, error handling) runs on the CPU against the recording cudart stand-in for every
#     target GPU at the shipped profiles' largest shapes (tests/plugins/host_path, no GPU needed)
#  5. IPluginV3 wrappers: compiled (+ host-side wrapper test) when TensorRT headers are found, which
#     is not the case in CI: it prints the line saying so. Locally: TENSORRT_INCLUDE_DIR=<dir>.
# Env: PLUGINS_CI_BUILD (build root, default build/ci-plugins), JOBS (default 2),
#      TENSORRT_INCLUDE_DIR, CUOBJDUMP (default: the nvidia-cuda-cuobjdump wheel's), PLUGINS_CI_SKIP_NVCC=1 (only where no nvcc exists; CI has one),
#      PLUGINS_CI_SKIP_PYTEST=1 (step 2 is already part of the caller's pytest run).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${PLUGINS_CI_BUILD:-$root/build/ci-plugins}
jobs=${JOBS:-2}
cd "$root"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
common=(-DYOLACT_BUILD_ENGINES=OFF)
t0=$SECONDS
step() { echo; echo "== plugins CI [$((SECONDS - t0))s] $*"; }
configure() { local dir=$1; shift; [ -f "$dir/CMakeCache.txt" ] && gen_args=() || gen_args=("${gen[@]}"); cmake -S "$root" -B "$dir" "${gen_args[@]}" "${common[@]}" "$@" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }; grep -E "IPluginV3 wrappers|CUDA instance|Thrust" "$dir.configure.log" || true; }
mkdir -p "$build"

step "1/5 CPU instance: build + ctest"
configure "$build/cpu" -DCMAKE_BUILD_TYPE=Release -DYOLACT_ENABLE_CUDA=OFF
cmake --build "$build/cpu" -j "$jobs"
ctest --test-dir "$build/cpu" --output-on-failure

step "2/5 pytest tests/plugins (CPU vs ops, ONNX Runtime custom ops, TensorRT if present)"
if [ "${PLUGINS_CI_SKIP_PYTEST:-0}" = 1 ]; then
  echo "skipped here (PLUGINS_CI_SKIP_PYTEST=1): .ci/run's full pytest run includes tests/plugins"
else
  YOLACT_PLUGINS_CPU_LIB="$build/cpu/lib/libyolact_plugins_cpu.so" YOLACT_PLUGINS_NO_BUILD=1 \
    python -m pytest -q -rs -p no:cacheprovider tests/plugins
fi

step "3/5 AddressSanitizer: ctest + CPU-vs-ops pytest"
configure "$build/asan" -DCMAKE_BUILD_TYPE=Debug -DYOLACT_ENABLE_CUDA=OFF -DYOLACT_SANITIZE=ON
cmake --build "$build/asan" -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 ctest --test-dir "$build/asan" --output-on-failure
asan_rt="$(${CXX:-g++} -print-file-name=libasan.so) $(${CXX:-g++} -print-file-name=libstdc++.so)"
# Python itself is not built with ASan: preload the runtime (and libstdc++, or ASan cannot resolve
# __cxa_throw for C++ extensions such as Triton's), and skip leak checks (CPython keeps its
# allocations to the end); any invalid access in the library aborts the run.
ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1 LD_PRELOAD="$asan_rt" \
  YOLACT_PLUGINS_CPU_LIB="$build/asan/lib/libyolact_plugins_cpu.so" YOLACT_PLUGINS_NO_BUILD=1 \
  python -m pytest -q -p no:cacheprovider tests/plugins/test_plugins_cpu.py

step "4/5 nvcc: CUDA units for every target + cuobjdump architecture check + host path on the CPU"
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  configure "$build/cuda" -DCMAKE_BUILD_TYPE=Release \
    ${TENSORRT_INCLUDE_DIR:+-DTENSORRT_INCLUDE_DIR=$TENSORRT_INCLUDE_DIR}
  t_nvcc=$SECONDS
  cmake --build "$build/cuda" -j "$jobs" --target yolact_plugins_cuda yd_host_path_test
  echo "nvcc + link: $((SECONDS - t_nvcc))s"
  cuobjdump=${CUOBJDUMP:-$(python3 - <<'PY'
import glob, site
hits = sorted(p for d in site.getsitepackages() for p in glob.glob(d + '/nvidia/*/bin/cuobjdump'))
print(hits[-1] if hits else '')
PY
)}
  [ -x "$cuobjdump" ] || { echo "cuobjdump not found: pip install nvidia-cuda-cuobjdump (or set CUOBJDUMP)" >&2; exit 1; }
  objs=$(find "$build/cuda/CMakeFiles/yolact_plugins_cuda_objects.dir" -name '*.cu.o' | sort)
  archs=$(sed -n 's/^YOLACT_CUDA_ARCHS:STRING=//p' "$build/cuda/CMakeCache.txt")
  ptx_arch=${archs##*;}
  for obj in $objs; do
    elf=$("$cuobjdump" --list-elf "$obj"); ptx=$("$cuobjdump" --list-ptx "$obj")
    echo "$(basename "$obj"): $(echo "$elf" | grep -oE 'sm_[0-9]+' | sort -u | tr '\n' ' ')+ PTX $(echo "$ptx" | grep -oE 'sm_[0-9]+' | sort -u | tr '\n' ' ')"
    for arch in ${archs//;/ }; do
      echo "$elf" | grep -q "sm_$arch\b" || { echo "$obj has no SASS for sm_$arch" >&2; exit 1; }
    done
    echo "$ptx" | grep -q "sm_$ptx_arch\b" || { echo "$obj has no PTX for compute_$ptx_arch" >&2; exit 1; }
  done
  for obj in $objs; do "$cuobjdump" -ptx "$obj"; done > "$build/cuda/kernels.ptx"
  "$build/cuda/bin/yd_host_path_test" --ptx "$build/cuda/kernels.ptx" --archs "$archs" --ptx-arch "$ptx_arch" \
    > "$build/cuda/host_path.log" || { cat "$build/cuda/host_path.log"; exit 1; }
  grep -E "^(kernel|ok   error)|passed" "$build/cuda/host_path.log"
  grep -m3 "B=8 N=57744" "$build/cuda/host_path.log"
elif [ "${PLUGINS_CI_SKIP_NVCC:-0}" = 1 ]; then
  echo "nvcc: skipped (PLUGINS_CI_SKIP_NVCC=1, no nvcc on this machine)"
else
  echo "nvcc not found: the CUDA compile check cannot run (set PLUGINS_CI_SKIP_NVCC=1 to skip)" >&2
  exit 1
fi

step "5/5 IPluginV3 wrappers"
if [ -f "$build/cuda/yolact_plugins_wrappers.txt" ]; then
  cat "$build/cuda/yolact_plugins_wrappers.txt"
  if grep -q "compiled against" "$build/cuda/yolact_plugins_wrappers.txt"; then
    cmake -S "$root" -B "$build/cuda" -DYOLACT_BUILD_TESTS=ON >/dev/null
    cmake --build "$build/cuda" -j "$jobs"
    ctest --test-dir "$build/cuda" --output-on-failure -R "yd_trt_(wrapper|enqueue)_test"
  fi
else
  echo "IPluginV3 wrappers: skipped: no CUDA toolkit"
fi
step "done"
