"""The plugin flavour: custom nodes for our TensorRT plugins instead of standard-op subgraphs.

Node contracts (names, domain, versions, namespaces, attributes) are the plugins' READMEs
(plugins/deform_im2col, plugins/fast_nms), implemented by :mod:`yolact_deploy.plugins`:

- ``torchvision::deform_conv2d`` -> ``YolactDeformIm2col`` + MatMul + bias
  (:func:`yolact_deploy.plugins.deform_conv2d_translation`);
- Fast NMS -> one ``YolactFastNMS`` node. ``Yolact.detect`` calls ``ops.nms.fast_nms``; during a plugin
  export that call goes through the torch custom op ``yolact_deploy::fast_nms`` (eager: the same
  reference function; fake: fixed-K shapes), which torch.export keeps as one node and the translation
  below turns into the plugin node. Decode before it and mask assembly after it stay standard ops.
"""
from __future__ import annotations

import contextlib
from typing import Tuple

import torch

from ..errors import YolactError
from ..ops import nms as nms_ops


@torch.library.custom_op('yolact_deploy::fast_nms', mutates_args=())
def fast_nms_op(boxes: torch.Tensor, scores: torch.Tensor, conf_thresh: float,
                iou_threshold: float, top_k: int, max_detections: int,
                cross_class: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                            torch.Tensor]:
    """The plugin's outputs: num_detections int32 [B,1], boxes, scores, classes int32, indices int32."""
    d = nms_ops.fast_nms(boxes, scores, conf_thresh=conf_thresh, iou_threshold=iou_threshold,
                         top_k=top_k, max_detections=max_detections, cross_class=cross_class)
    return (d.num_detections.to(torch.int32)[:, None], d.boxes.clone(), d.scores.clone(),
            d.classes.to(torch.int32), d.indices.to(torch.int32))


@fast_nms_op.register_fake
def _fast_nms_fake(boxes, scores, conf_thresh, iou_threshold, top_k, max_detections, cross_class):
    batch = boxes.shape[0]
    k = max_detections
    return (boxes.new_empty((batch, 1), dtype=torch.int32), boxes.new_empty((batch, k, 4)),
            scores.new_empty((batch, k)), boxes.new_empty((batch, k), dtype=torch.int32),
            boxes.new_empty((batch, k), dtype=torch.int32))


def _fast_nms_via_op(boxes, scores, *, conf_thresh=0.05, iou_threshold=0.5, top_k=200,
                     max_detections=100, cross_class=False, second_threshold=False):
    if second_threshold:
        raise YolactError('the plugin export does not use second_threshold')
    num, b, s, c, i = fast_nms_op(boxes, scores, float(conf_thresh), float(iou_threshold),
                                  int(top_k), int(max_detections), bool(cross_class))
    return nms_ops.Detections(num[:, 0].to(torch.int64), b, s, c.to(torch.int64),
                              i.to(torch.int64))


@contextlib.contextmanager
def nms_as_plugin_op():
    """Routes ``Yolact.detect``'s Fast NMS through ``yolact_deploy::fast_nms`` while exporting."""
    from ..model import yolact as yolact_module
    original = yolact_module.fast_nms
    yolact_module.fast_nms = _fast_nms_via_op
    try:
        yield
    finally:
        yolact_module.fast_nms = original


def _plugins_module():
    try:
        from ..deploy import plugin_library as plugins
    except ImportError as exc:
        raise YolactError(f'--plugins: yolact_deploy.plugins is not available ({exc})') from None
    return plugins


def _fast_nms_translation(boxes, scores, conf_thresh: float, iou_threshold: float, top_k: int,
                          max_detections: int, cross_class: bool):
    plugins = _plugins_module()
    _, nms = plugins.onnxscript_ops()
    return nms(boxes, scores, conf_thresh=float(conf_thresh), iou_threshold=float(iou_threshold),
               top_k=int(top_k), max_detections=int(max_detections),
               cross_class=int(bool(cross_class)), second_threshold=0,
               plugin_version=plugins.PLUGIN_VERSION, plugin_namespace=plugins.PLUGIN_NAMESPACE,
               _num_outputs=5)


def plugin_table(options) -> dict:
    import torchvision  # noqa: F401  (registers torch.ops.torchvision.*)
    plugins = _plugins_module()
    return {torch.ops.torchvision.deform_conv2d.default: plugins.deform_conv2d_translation,
            torch.ops.yolact_deploy.fast_nms.default: _fast_nms_translation}


def check_plugin_options(config, options) -> None:
    _plugins_module()
    if options.raw:
        return  # a raw graph has only the DCN nodes


def plugin_metadata(dcn: bool = True) -> dict:
    """``dcn``: the graph has ``YolactDeformIm2col`` nodes (a DCN preset exported with --dcn plugin)."""
    plugins = _plugins_module()
    nodes = [plugins.DEFORM_IM2COL, plugins.FAST_NMS] if dcn else [plugins.FAST_NMS]
    return {'plugins': {'domain': plugins.DOMAIN, 'domain_version': plugins.DOMAIN_VERSION,
                        'nodes': nodes,
                        'plugin_version': plugins.PLUGIN_VERSION,
                        'plugin_namespace': plugins.PLUGIN_NAMESPACE,
                        'library': plugins.TRT_LIBRARY}}
