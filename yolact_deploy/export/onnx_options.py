"""What ``yolact-export --to onnx`` can be asked for: the opset range and :class:`ExportOptions`.
Importable without PyTorch, so the command line can describe them anywhere."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

DEFAULT_OPSET = 19
MIN_OPSET = 17           # non-DCN presets; lower opsets lack what the graph needs
DCN_MIN_OPSET = 19       # ONNX DeformConv appeared in opset 19
MAX_OPSET = 21           # highest opset exported and checked here (ONNX Runtime 1.31 runs it)
# How deformable convs are written (docs/onnx.md, "Flavours"): ONNX DeformConv, GridSample + 1x1 Conv
# (standard ops every runtime loads without a plugin), or our YolactDeformIm2col plugin node.
DCN_FORMS = ('deformconv', 'gridsample', 'plugin')


@dataclass(frozen=True)
class ExportOptions:
    raw: bool = False                 # network outputs only (no decode/NMS/masks)
    with_raw: bool = False            # end-to-end outputs plus the raw ones (for validation)
    plugins: bool = False             # custom nodes for our TensorRT plugins instead of std ops
    fp16: bool = False                # mixed FP16/FP32 graph
    opset: int = DEFAULT_OPSET
    max_detections: int = 100         # K of the fixed-size outputs
    cross_class: bool = False         # cross-class Fast NMS
    simplify: bool = True             # onnxslim
    max_batch: int = 64               # upper bound of the dynamic batch dim (torch.export needs one)
    trt_check: bool = True            # end with the TensorRT conformance check (deploy.trt_conformance)
    dcn: Optional[str] = None         # DCN_FORMS; None: 'plugin' with plugins, else 'deformconv'

    @property
    def flavour(self) -> str:
        return 'plugins' if self.plugins else 'portable'

    @property
    def dcn_form(self) -> str:
        return self.dcn or ('plugin' if self.plugins else 'deformconv')

    @property
    def precision(self) -> str:
        return 'fp16' if self.fp16 else 'fp32'
