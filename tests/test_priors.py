"""Priors against hand-computed values, and the FPN sizes they assume against the real network."""
import math

import pytest
import torch

from yolact_deploy.config import OFFICIAL_PRESETS, get_preset
from yolact_deploy.model import Yolact
from yolact_deploy.model.backbones import feature_map_sizes, num_priors
from yolact_deploy.ops.priors import make_priors

torch.set_num_threads(1)

SIZES_550 = [(69, 69), (35, 35), (18, 18), (9, 9), (5, 5)]
S2, H2 = math.sqrt(2.0), math.sqrt(0.5)


def _close(prior, expected):
    assert prior.tolist() == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_yolact_base_priors_by_hand():
    cfg = get_preset('yolact_base')
    p = make_priors(cfg, SIZES_550)
    assert p.shape == (19248, 4) and p.dtype == torch.float32
    # cell (0, 0) of P3: centre (0.5/69, 0.5/69); aspect ratios 1, 1/2, 2 enter as their square
    # roots; the official "square anchors" bug then sets h = w.
    c = 0.5 / 69
    _close(p[0], [c, c, 24 / 550, 24 / 550])
    _close(p[1], [c, c, 24 * H2 / 550, 24 * H2 / 550])
    _close(p[2], [c, c, 24 * S2 / 550, 24 * S2 / 550])
    # row 1, column 2 (cells run row-major, x fastest): index (1 * 69 + 2) * 3
    _close(p[213], [2.5 / 69, 1.5 / 69, 24 / 550, 24 / 550])
    # first prior of P4 follows all 69 * 69 * 3 of P3
    _close(p[69 * 69 * 3], [0.5 / 35, 0.5 / 35, 48 / 550, 48 / 550])
    # the last prior: P7 cell (4, 4), aspect ratio 2, scale 384
    _close(p[-1], [0.9, 0.9, 384 * S2 / 550, 384 * S2 / 550])


def test_yolact_plus_base_priors_by_hand():
    cfg = get_preset('yolact_plus_base')
    p = make_priors(cfg, SIZES_550)
    assert p.shape == (19248 * 3, 4)
    c = 0.5 / 69
    # per cell: 3 scales x 3 aspect ratios, scale-major; no square-anchor bug (h = scale / ar)
    for k, (s, ar) in enumerate((s, ar) for s in (0, 1, 2) for ar in (1.0, H2, S2)):
        scale = 24 * 2 ** (s / 3)
        _close(p[k], [c, c, scale * ar / 550, scale / ar / 550])
    assert float(p[4, 2]) == pytest.approx(24 * 2 ** (1 / 3) * H2 / 550, rel=1e-6)
    assert float(p[4, 3]) == pytest.approx(24 * 2 ** (1 / 3) / H2 / 550, rel=1e-6)
    # P5 (third level), cell (2, 3)
    start = (69 * 69 + 35 * 35) * 9 + (2 * 18 + 3) * 9
    _close(p[start + 8], [3.5 / 18, 2.5 / 18, 96 * 2 ** (2 / 3) * S2 / 550,
                          96 * 2 ** (2 / 3) / S2 / 550])


def test_resized_presets_truncate_their_pixel_scales():
    # Official: int(s / 550 * size), truncation included.
    assert [s[0] for s in get_preset('yolact_im400').backbone.pred_scales] == [17, 34, 69, 139, 279]
    assert [s[0] for s in get_preset('yolact_im700').backbone.pred_scales] == [30, 61, 122, 244, 488]
    cfg = get_preset('yolact_im400')
    p = make_priors(cfg, feature_map_sizes(cfg, 400, 400))
    _close(p[0], [0.5 / 50, 0.5 / 50, 17 / 400, 17 / 400])


@pytest.mark.parametrize('name,expected', [
    ('yolact_base', SIZES_550), ('yolact_darknet53', SIZES_550),
    ('yolact_im400', [(50, 50), (25, 25), (13, 13), (7, 7), (4, 4)]),
    ('yolact_im700', [(88, 88), (44, 44), (22, 22), (11, 11), (6, 6)]),
])
def test_feature_map_sizes_at_the_model_size(name, expected):
    cfg = get_preset(name)
    assert feature_map_sizes(cfg, cfg.max_size, cfg.max_size) == expected


def test_num_priors_at_550():
    assert num_priors(get_preset('yolact_base')) == 19248
    assert num_priors(get_preset('yolact_plus_resnet50')) == 19248 * 3


@pytest.mark.parametrize('name', sorted(OFFICIAL_PRESETS))
def test_feature_map_sizes_match_the_network(name):
    """The sizes the priors are built for are the sizes the FPN really produces (small inputs,
    square and odd non-square), and forward() returns exactly those priors."""
    cfg = get_preset(name)
    torch.manual_seed(0)
    model = Yolact(cfg).eval()
    try:
        for h, w in ((128, 128), (97, 131)):
            with torch.no_grad():
                feats = model.features(torch.randn(1, 3, h, w))
                out = model.heads(feats)
            sizes = [tuple(f.shape[-2:]) for f in feats]
            assert sizes == feature_map_sizes(cfg, h, w)
            assert out['priors'].shape[0] == num_priors(cfg, h, w) == out['loc'].shape[1]
            torch.testing.assert_close(out['priors'], make_priors(cfg, sizes), rtol=0, atol=0)
            # prototypes come from P3 upsampled x2
            assert tuple(out['proto'].shape[1:3]) == (2 * sizes[0][0], 2 * sizes[0][1])
    finally:
        del model
