#!/usr/bin/env bash
# The runtime install, as a deployment box gets it: a fresh venv and `pip install <checkout>` (no
# extras, not editable). Checks that no torch, torchvision, triton or nvidia-* package came with it,
# then runs yolact-infer, yolact-serve (one real request over loopback) and yolact-bench there on an
# ONNX model exported by the full install (the caller's python3), and compares the detections with
# the full install's. Also: the wheel's deployment presets are found (yolact-export --to trt --preset
# reaches the TensorRT check), the plugins' CPU library builds from the sources the wheel carries, and
# a tool that needs PyTorch says so in one line (exit 2).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "runtime install: FAIL: $*" >&2; exit 1; }
sample="$repo/yolact_deploy/assets/samples/000000311002.jpg"
# The venv must see its own install only; the full install (python3) keeps the caller's PYTHONPATH.
full_path=${PYTHONPATH-}
unset PYTHONPATH
full() { PYTHONPATH="$full_path" python3 "$@"; }

python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$repo" 2>"$work/pip.log" || { cat "$work/pip.log" >&2; fail "pip install"; }
bin="$work/venv/bin"
heavy=$("$bin/python" -m pip list --format=freeze | grep -iE '^(torch|torchvision|triton|nvidia-)' || true)
[ -z "$heavy" ] || fail "the plain install pulled in: $(echo $heavy)"
echo "plain install: $("$bin/python" -m pip list --format=freeze | wc -l) packages, no torch/torchvision/triton/nvidia-*"
(cd / && "$bin/python" - <<'EOF'
from yolact_deploy.deploy.package_data import native_source_dir, presets_dir
native, presets = native_source_dir(), presets_dir()
assert 'site-packages' in str(native), native
assert (native / 'plugins' / 'fast_nms' / 'fast_nms_cpu.cpp').is_file(), native
assert sorted(p.stem for p in presets.glob('*.json')) == ['desktop_fp16', 'int8', 'jetson_orin_fp16']
print(f'shipped in the wheel: presets and plugin sources ({native.parent})')
EOF
)
# the plugins' CPU library (ONNX Runtime custom ops) builds from the shipped sources into the user cache
lib=$(cd / && XDG_CACHE_HOME="$work/cache" "$bin/python" -m yolact_deploy.deploy.plugin_library)
case "$lib" in "$work/cache/yolact_deploy/"*/libyolact_plugins_cpu.so) ;; *) fail "plugin library: $lib" ;; esac
echo "plugin CPU library built from the wheel's sources: ${lib#$work/}"

cd "$work"   # nothing of the checkout on sys.path from here on
# full install: export the bundled model, and its detections as the reference
full -m yolact_deploy.cli.export -q -o model.onnx
full -m yolact_deploy.cli.infer "$sample" --weights model.onnx --no-draw --save-json full.json >/dev/null
# runtime install
"$bin/yolact-infer" "$sample" --weights model.onnx --no-draw --save-json runtime.json >/dev/null
cmp -s full.json runtime.json || fail "yolact-infer: detections differ from the full install's"
echo "yolact-infer: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))) // 2)' runtime.json) detections, identical to the full install's"

"$bin/yolact-serve" --weights model.onnx --port 0 2>serve.log &
server=$!
url=
for _ in $(seq 100); do
  url=$(grep -o 'http://[0-9.:]*' serve.log || true)
  [ -n "$url" ] && break
  kill -0 "$server" 2>/dev/null || fail "yolact-serve exited: $(cat serve.log)"
  sleep 0.2
done
[ -n "$url" ] || fail "yolact-serve did not come up: $(cat serve.log)"
"$bin/python" - "$url/v1/detect" "$sample" full.json <<'EOF'
import json, sys, urllib.request
url, image, reference = sys.argv[1:]
req = urllib.request.Request(url, data=open(image, 'rb').read(),
                             headers={'Content-Type': 'image/jpeg'})
with urllib.request.urlopen(req, timeout=60) as response:
    body = json.load(response)
got = body['results'][0]['detections']
ref = [r for r in json.load(open(reference)) if 'bbox' in r]
pairs = [(d['category_id'], d['bbox'], round(d['score'], 5)) for d in got]
want = [(r['category_id'], r['bbox'], round(r['score'], 5)) for r in ref]
if pairs != want:
    sys.exit(f'runtime install: FAIL: yolact-serve answered {pairs[:3]}..., the full install {want[:3]}...')
print(f'yolact-serve: one request over loopback, {len(got)} detections, identical to the full install\'s')
EOF
kill "$server"; wait "$server" 2>/dev/null || true; server=

"$bin/yolact-bench" model.onnx --batch 1 --warmup 1 --iters 2 --json bench.json >/dev/null
echo "yolact-bench: $(python3 -c 'import json; r=json.load(open("bench.json")); print(r["models"][0]["backend"])') backend, report written"

set +e
"$bin/yolact-export" --to trt --onnx model.onnx --preset desktop_fp16 2>trt.log; rc=$?
"$bin/yolact-export" --weights model.pth 2>torch.log; rc_torch=$?
set -e
[ "$rc" = 2 ] && grep -q 'TensorRT' trt.log && ! grep -q 'unknown preset' trt.log \
  || fail "yolact-export --to trt --preset desktop_fp16: $(cat trt.log)"
echo "yolact-export --to trt --preset desktop_fp16: preset found; $(cat trt.log)"
[ "$rc_torch" = 2 ] && [ "$(wc -l < torch.log)" = 1 ] && grep -q "yolact-deploy\[torch\]" torch.log \
  || fail "yolact-export from a checkpoint without PyTorch: $(cat torch.log)"
echo "yolact-export from a checkpoint: $(cat torch.log)"
