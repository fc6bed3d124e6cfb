#!/usr/bin/env bash
# One prepared command for a machine with an NVIDIA GPU, nvcc and PyTorch (no TensorRT needed):
#   scripts/device_check.sh [OUT.json]          (default build/device_check/device_check.json)
# 1. builds the CPU and CUDA instances (all default targets; SASS of the GPU's family is required)
# 2. runs the CUDA host path on the CPU against the recording cudart stand-in (also without a GPU)
# 3. with a GPU: CUDA instance vs CPU instance on the plugin test cases (bit-identical FP32 and FP16),
#    compute-sanitizer memcheck and racecheck on a subset, CUDA-graph capture of each plugin call at
#    the profile maximum, per-kernel timing, the PyTorch model FP32/FP16 on the GPU vs the CPU
# Writes one JSON; the parts' timeouts add up to 8 minutes (build 220 s, host path 20 s, GPU checks
# 100 s, memcheck and racecheck 70 s each).
# Without a GPU, steps 1-2 run and the JSON says the GPU parts were skipped and why.
# Env: DEVICE_CHECK_BUILD_TIMEOUT (s, default 220: enough on a many-core GPU machine; a 2-core box
#      needs ~600), CUOBJDUMP (default: PATH, the CUDA toolkit's, or the nvidia-cuda-cuobjdump wheel's).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/build/device_check/device_check.json}
build=$root/build/device_check
mkdir -p "$build" "$(dirname "$out")"
jobs=$(nproc 2>/dev/null || echo 2)
t0=$SECONDS
cd "$root"
declare -A part
log() { echo "== device_check [$((SECONDS - t0))s] $*" >&2; }

log "build"
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
if cmake -S . -B "$build/cmake" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DYOLACT_BUILD_ENGINES=OFF >"$build/configure.log" 2>&1 \
   && timeout "${DEVICE_CHECK_BUILD_TIMEOUT:-220}" cmake --build "$build/cmake" -j "$jobs" --target yolact_plugins_cpu yolact_plugins_cuda yd_host_path_test \
      >"$build/build.log" 2>&1; then
  part[build]="\"ok\""
else
  tail -20 "$build/build.log" >&2
  part[build]="\"failed (see $build/build.log)\""
fi
lib=$build/cmake/lib/libyolact_plugins_cuda.so
export YOLACT_PLUGINS_CPU_LIB=$build/cmake/lib/libyolact_plugins_cpu.so YOLACT_PLUGINS_NO_BUILD=1

log "host path on the CPU (recording cudart)"
ptx=()
cuobjdump=${CUOBJDUMP:-$(command -v cuobjdump || ls /usr/local/cuda/bin/cuobjdump 2>/dev/null || python3 - <<'PY'
import glob, site
hits = sorted(p for d in site.getsitepackages() for p in glob.glob(d + '/nvidia/*/bin/cuobjdump'))
print(hits[-1] if hits else '')
PY
)}
if [ -n "$cuobjdump" ] && [ -x "$cuobjdump" ]; then
  for obj in $(find "$build/cmake/CMakeFiles/yolact_plugins_cuda_objects.dir" -name '*.cu.o' 2>/dev/null); do
    "$cuobjdump" -ptx "$obj"; done > "$build/kernels.ptx" && ptx=(--ptx "$build/kernels.ptx")
fi
if timeout 20 "$build/cmake/bin/yd_host_path_test" "${ptx[@]}" >"$build/host_path.log" 2>&1; then
  part[host_path]="\"$(tail -1 "$build/host_path.log")\""
else
  part[host_path]="\"FAILED: $(tail -1 "$build/host_path.log" 2>/dev/null)\""
fi

gpu_reason=""
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  gpu_reason="no NVIDIA GPU (nvidia-smi -L failed)"
elif ! python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  gpu_reason="PyTorch sees no CUDA device"
elif [ ! -f "$lib" ]; then
  gpu_reason="libyolact_plugins_cuda.so was not built"
fi

if [ -z "$gpu_reason" ]; then
  log "CUDA vs CPU cases, CUDA graphs at the profile maximum, kernel timing, PyTorch model"
  gpu_json=$(timeout 100 python3 scripts/device_check.py --lib "$lib" 2>"$build/gpu.err") || gpu_json="{\"error\": \"$(tail -1 "$build/gpu.err" | tr '"' "'")\"}"
  part[gpu]=$gpu_json
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  for tool in memcheck racecheck; do
    log "compute-sanitizer --tool $tool"
    if [ -x "$sanitizer" ]; then
      timeout 70 "$sanitizer" --tool "$tool" --error-exitcode 9 --target-processes all \
        python3 scripts/device_check.py --lib "$lib" --cases 20 --cases-only >"$build/$tool.log" 2>&1
      rc=$?
      part[$tool]="{\"exit\": $rc, \"summary\": \"$(grep -m1 -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$build/$tool.log" | tr '"' "'")\"}"
    else
      part[$tool]="\"skipped: compute-sanitizer not found\""
    fi
  done
else
  log "GPU parts skipped: $gpu_reason"
  for k in gpu memcheck racecheck; do part[$k]="\"skipped: $gpu_reason\""; done
fi

{
  printf '{"seconds": %d' "$((SECONDS - t0))"
  for k in build host_path gpu memcheck racecheck; do printf ', "%s": %s' "$k" "${part[$k]}"; done
  printf '}\n'
} > "$out"
python3 -m json.tool "$out" >/dev/null 2>&1 || echo "warning: $out is not valid JSON" >&2
log "wrote $out"
cat "$out"
