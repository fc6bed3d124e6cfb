"""Random weights that behave like a trained model, for tests and export checks without real weights.

Plain random initialisation gives near-uniform class scores (no detection survives the 0.05 threshold)
and all-positive prototypes (every mask is either empty or full). :func:`lively_random_init` rescales
the head and centres the prototypes and coefficients on an example batch, so detections have confident
scores, boxes stay near their priors and masks have real structure -- every stage of the pipeline is
exercised, with the official parameter names and shapes unchanged.
"""
from __future__ import annotations

from typing import Optional

import torch


@torch.no_grad()
def lively_random_init(model, seed: int = 0, example: Optional[torch.Tensor] = None):
    """``example``: a preprocessed batch ``[B, 3, S, S]`` used to centre prototypes/coefficients
    (default: a fixed random batch)."""
    gen = torch.Generator().manual_seed(seed)

    def normal_(t, std):
        t.copy_(torch.randn(t.shape, generator=gen) * std)

    for head in model.prediction_layers:
        normal_(head.conf_layer.weight, 3.0)
        head.conf_layer.bias.zero_()
        normal_(head.bbox_layer.weight, 0.02)
        head.bbox_layer.bias.zero_()
        normal_(head.mask_layer.weight, 0.5)
    convs = [m for m in model.proto_net if isinstance(m, torch.nn.Conv2d)]
    normal_(convs[-1].weight, 2.0)
    # Non-zero DCN offsets and masks so deformable sampling is really exercised.
    for module in model.modules():
        if hasattr(module, 'conv_offset_mask'):
            normal_(module.conv_offset_mask.weight, 0.02)
            normal_(module.conv_offset_mask.bias, 0.5)

    if getattr(model, 'maskiou_net', None) is not None:
        # The re-scoring net ends in a ReLU: a positive bias keeps its predicted IoUs off zero.
        last = [m for m in model.maskiou_net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        normal_(last.weight, 0.05)
        last.bias.fill_(0.6)

    was_training = model.training
    model.eval()
    size = model.config.max_size
    if example is None:
        example = torch.randn((1, 3, size, size), generator=gen)
    feats = model.features(example)
    # Centre each prototype channel (pre-ReLU) on its median: half the pixels stay active.
    pre = model.proto_net(feats[model.config.proto_src])
    convs[-1].bias.sub_(pre.median(dim=3).values.median(dim=2).values.median(dim=0).values)
    # Centre the coefficients (pre-tanh) so they take both signs.
    head = model.prediction_layers[0]
    up = head.upfeature(feats[0])
    coef = head.mask_layer(up)                                  # [B, A*D, H, W]
    head.mask_layer.bias.sub_(coef.mean(dim=(0, 2, 3)))
    model.train(was_training)
    return model


def make_test_model(preset: str = 'yolact_resnet50', max_size: int = 256, seed: int = 0):
    """A reduced-input model of a preset with lively random weights, centred on a bundled photo."""
    from . import config
    from .assets import default_sample
    from .model import Yolact
    from .deploy.media import load_image
    from .transforms import preprocess
    cfg = config.get_preset(preset).replace(max_size=max_size)
    example = preprocess([load_image(default_sample())], cfg)
    torch.manual_seed(seed)
    return lively_random_init(Yolact(cfg).eval(), seed=seed, example=example)
