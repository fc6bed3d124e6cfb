"""ONNX (or a checkpoint, exported on the way) -> TensorRT engine + sidecar JSON, through the TensorRT
Python API, on TensorRT 10.3+ and 11.x.

Precision (facts and sources: /work/shared/reference/tensorrt-notes.md section 3; reasoning:
docs/tensorrt.md):

==========  =====================================  ===========================================
request     TensorRT 10.x                           TensorRT 11.x
==========  =====================================  ===========================================
fp32        FP32 graph, strongly typed              FP32 graph (always strongly typed)
fp16        default ``strong``: FP16 graph,         FP16 graph
            ``STRONGLY_TYPED``; ``--fp16-mode weak``
            : FP32 graph + ``BuilderFlag.FP16``
int8        Q/DQ graph: strongly typed; otherwise   Q/DQ graph only (ModelOpt); calibration
            FP32 graph + FP16/INT8 flags + entropy  images go to ModelOpt when it is installed
            calibrator on a folder of images
==========  =====================================  ===========================================

Split by responsibility (as Polygraphy's ``backend/trt``): :mod:`.trt_config` (options, presets,
ONNX facts, the build plan: everything decided without TensorRT, tested on any machine),
:mod:`.trt_calibrator` (INT8), :mod:`.trt_progress` (the progress display), the sidecar
(:mod:`yolact_deploy.deploy.sidecar`), plugin loading (:mod:`yolact_deploy.deploy.plugin_library`) and
this module, the build itself (tested where TensorRT and a GPU exist; tests/test_tensorrt_build.py
skips it elsewhere, saying why). No PyTorch: an engine is built from an .onnx on the target (Jetson)
with the runtime install. The command line is in cli/export.py.
"""
from __future__ import annotations

import os
import sys
import time
from typing import List

from ..deploy import trt_compat as compat
from ..deploy.contract import INPUT_NAME
from ..deploy.fileio import atomic_output, check_output_file
from ..deploy.plugin_library import PluginLibraryError, load_trt_plugins, resolve_trt_library
from ..deploy.sidecar import make_sidecar, sha256_file, sidecar_path, write_sidecar
# The configuration names stay importable from here (one module for library users and tests).
from .trt_calibrator import make_calibrator, modelopt_quantize, write_calibration_npy
from .trt_config import (MODELOPT_COMMAND, PLUGIN_DOMAIN, QDQ_OPS, BuildError,  # noqa: F401
                         BuildOptions, BuildPlan, OnnxInfo, check_calibration_folder, check_options,
                         check_profile_against_graph, inspect_onnx, list_images, list_presets,
                         load_preset, onnx_export_options, options_from_preset, parse_image_sizes,
                         parse_size, parse_triple, plan_build)
from .trt_progress import BuildProgress, make_monitor  # noqa: F401


# ---------------------------------------------------------------------------------------------------
# The build

def _parser_errors(parser) -> str:
    errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
    return errors[0].splitlines()[0][:400] if errors else 'no parser message'


def build_engine(onnx_path: str, engine_path: str, options: BuildOptions = BuildOptions(),
                 quiet: bool = False) -> dict:
    """Builds ``engine_path`` (+ its sidecar) from ``onnx_path``; returns the sidecar dict.

    Checks everything it can before the long build: TensorRT present and >= 10.3, options, the ONNX
    file, the plan (precision route), calibration images, the plugin library, the output folder.
    """
    options = check_options(options)
    trt = compat.import_tensorrt()
    ver = compat.version(trt)
    info = inspect_onnx(onnx_path)
    from ..deploy.trt_conformance import assert_conformant
    assert_conformant(onnx_path)    # the parser's documented rules, in one line, before minutes of build
    modelopt = _modelopt_available()
    plan = plan_build(info, options, ver, modelopt)
    profile = options.profile(info.network_size)
    check_profile_against_graph(info, profile)
    check_output_file(engine_path)
    if options.timing_cache:
        check_output_file(options.timing_cache)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    gpu = compat.gpu_info(0)
    say(f'TensorRT {trt.__version__} on {gpu["name"]} (compute {gpu["compute_capability"]}); '
        f'{plan.precision_label}, {"strongly" if plan.strongly_typed else "weakly"} typed; '
        f'profile {profile["min"]} / {profile["opt"]} / {profile["max"]}')

    logger = compat.init_nvinfer_plugins(trt, options.verbose)  # ONNX DeformConv -> NVIDIA's plugin
    plugin = None
    if plan.needs_plugins:
        try:
            plugin = load_trt_plugins(trt, resolve_trt_library(options.plugin_library),
                                      info.plugin_ops)
        except PluginLibraryError as exc:
            raise BuildError(str(exc)) from None
        say(f'plugins: {plugin["path"]} ({", ".join(plugin["ops"])})')

    source = onnx_path
    tmp_files: List[str] = []
    try:
        if plan.modelopt_quantize:
            base = os.path.splitext(engine_path)[0]
            npz = write_calibration_npy(options.calib_images, base + '.calib.npz', *profile['opt'][1:3],
                                        limit=options.calib_limit)
            source = modelopt_quantize(onnx_path, base + '_int8_qdq.onnx', npz,
                                       plugin and plugin['path'])
            tmp_files.append(npz)
            say(f'ModelOpt Q/DQ graph: {source}')
        return _build(trt, logger, source, engine_path, options, info, plan, profile, plugin, gpu,
                      say, quiet)
    finally:
        for f in tmp_files:
            if os.path.exists(f):
                os.unlink(f)


def _build(trt, logger, source, engine_path, options, info, plan, profile, plugin, gpu, say,
           quiet) -> dict:
    t0 = time.time()
    builder = trt.Builder(logger)
    network = builder.create_network(compat.network_flags(trt, plan.strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(os.path.abspath(source)):
        raise BuildError(f'TensorRT cannot parse {source}: {_parser_errors(parser)}')
    names = [network.get_input(i).name for i in range(network.num_inputs)]
    if names != [INPUT_NAME]:
        raise BuildError(f'{source}: expected one input {INPUT_NAME!r}, TensorRT sees {names}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    config.builder_optimization_level = options.optimization_level
    if options.detailed_profile:
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(INPUT_NAME, profile['min'], profile['opt'], profile['max'])
    config.add_optimization_profile(opt_profile)
    if plan.flags:
        compat.set_weak_precision_flags(trt, config, fp16='FP16' in plan.flags,
                                        int8='INT8' in plan.flags)
    calibrator = None
    if plan.calibrate:
        files = check_calibration_folder(options.calib_images)[:options.calib_limit] \
            if options.calib_images else []
        b, h, w = profile['opt'][0], profile['opt'][1], profile['opt'][2]
        if files and len(files) < b:
            raise BuildError(f'{len(files)} calibration images but the kOPT batch is {b}: add '
                             f'images or lower --batch OPT')
        calibrator = make_calibrator(trt, files, b, h, w, options.calib_cache, say)
        compat.set_int8_calibrator(trt, config, calibrator, opt_profile)
    timing_cache = None
    if options.timing_cache:
        blob = b''
        if os.path.isfile(options.timing_cache):
            with open(options.timing_cache, 'rb') as f:
                blob = f.read()
            say(f'timing cache: {options.timing_cache} ({len(blob)} bytes)')
        timing_cache = config.create_timing_cache(blob)
        config.set_timing_cache(timing_cache, ignore_mismatch=False)
    progress = None if quiet else BuildProgress()
    if progress is not None:
        config.progress_monitor = make_monitor(trt, progress)
    say('building the engine (minutes; TensorRT times many kernels) ...')
    try:
        host_memory = builder.build_serialized_network(network, config)
    finally:
        if progress is not None:
            progress.close()
        if calibrator is not None:
            calibrator.release()
    if host_memory is None:
        if progress is not None and progress.cancelled:
            raise BuildError('build cancelled')
        raise BuildError('TensorRT could not build the engine (see its messages above)')
    data = memoryview(host_memory)
    with atomic_output(engine_path, suffix='.plan') as tmp:
        with open(tmp, 'wb') as f:
            f.write(data)
    engine_sha = sha256_file(engine_path)
    if options.timing_cache:
        timing_cache = config.get_timing_cache()
        with atomic_output(options.timing_cache, suffix='.cache') as tmp:
            with open(tmp, 'wb') as f:
                f.write(memoryview(timing_cache.serialize()))
    io_tensors = _describe_engine(trt, logger, bytes(data))
    sidecar = make_sidecar(engine_path=engine_path, engine_sha256=engine_sha,
                           trt_version=trt.__version__, gpu=gpu, plan=plan, options=options,
                           profile=profile, info=info, plugin=plugin,
                           build_seconds=time.time() - t0, io_tensors=io_tensors)
    write_sidecar(sidecar_path(engine_path), sidecar)
    say(f'engine built in {time.time() - t0:.0f}s: {engine_path} '
        f'({host_memory.nbytes / 2 ** 20:.1f} MiB)')
    return sidecar


def _describe_engine(trt, logger, blob: bytes) -> List[dict]:
    """Names, modes, dtypes and shapes of the engine's I/O tensors (recorded in the sidecar)."""
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(blob)
    if engine is None:
        raise BuildError('the engine just built cannot be deserialized (see TensorRT messages)')
    out = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        out.append({'name': name,
                    'mode': 'input' if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                    else 'output',
                    'dtype': str(engine.get_tensor_dtype(name)).split('.')[-1],
                    'shape': list(engine.get_tensor_shape(name))})
    return out


def _modelopt_available() -> bool:
    try:
        import importlib.util
        return importlib.util.find_spec('modelopt') is not None
    except (ImportError, ValueError):
        return False


