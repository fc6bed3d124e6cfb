"""The semantic reference: every exported graph, plugin and runtime is compared against these ops."""
from .boxes import center_size, crop, decode, encode, jaccard, point_form, sanitize_coordinates
from .dcn import (deformable_im2col, modulated_deform_conv2d, modulated_deform_conv2d_reference,
                  split_offset_mask)
from .masks import assemble_masks
from .nms import Detections, fast_nms, standard_nms
from .priors import make_priors, priors_per_cell

__all__ = [
    'center_size', 'crop', 'decode', 'encode', 'jaccard', 'point_form', 'sanitize_coordinates',
    'deformable_im2col', 'modulated_deform_conv2d', 'modulated_deform_conv2d_reference',
    'split_offset_mask', 'assemble_masks', 'Detections', 'fast_nms', 'standard_nms',
    'make_priors', 'priors_per_cell',
]
