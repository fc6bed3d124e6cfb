"""The model's parameter layout against the official one, its outputs, and checkpoint errors.

The official state-dict signatures below were recorded by ``tools/official_parity.py`` from the
official dbolya/yolact model of each preset (key count and sha256 of the sorted ``name:shape``
lines; see ``benchmarks/results/official_parity.json``). CI has no official checkout, so the
recorded values stand in for it here.
"""
import json
import os

import pytest
import torch

from yolact_deploy.checkpoint import load_model, load_state_dict_strict, save_checkpoint
from yolact_deploy.config import OFFICIAL_PRESETS, get_preset, preset_from_filename
from yolact_deploy.errors import CheckpointError, ConfigError
from yolact_deploy.model import Yolact

torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORD = os.path.join(ROOT, 'benchmarks', 'results', 'official_parity.json')

# preset -> (number of state-dict entries, sha256 of sorted "key:shape" lines), official model
OFFICIAL_SIGNATURES = {
    'yolact_base':
        (660, 'c049feb6b06c3a1079f3977951e9095e8508f12d1f448f3f8e818cc9bf47364f'),
    'yolact_im400':
        (660, 'c049feb6b06c3a1079f3977951e9095e8508f12d1f448f3f8e818cc9bf47364f'),
    'yolact_im700':
        (660, 'c049feb6b06c3a1079f3977951e9095e8508f12d1f448f3f8e818cc9bf47364f'),
    'yolact_resnet50':
        (354, '14451357215a9e588520040fbb8de196df6c844e5c65d359bc9204fca97c1392'),
    'yolact_darknet53':
        (348, 'a406c1fde4978121b39a87496413244eae5225c4e015c44ee0e7513610438361'),
    'yolact_plus_base':
        (705, 'bf804d49c591ba9a70d6e00dec8e8d04e9a0731028fb60c2039a2cb93445c2ab'),
    'yolact_plus_resnet50':
        (405, 'd2be9eeb0bd1c5f8bf92d96191fcec0edb4c068a62f4f57c59d34cbb2c249492'),
}


def _signature(state_dict):
    # Same definition as tools/official_parity.state_dict_signature (kept separate: tools/ is not
    # a package).
    import hashlib
    lines = [f'{k}:{tuple(int(s) for s in v.shape)}' for k, v in sorted(state_dict.items())]
    return len(lines), hashlib.sha256('\n'.join(lines).encode()).hexdigest()


def _meta_model(name):
    with torch.device('meta'):      # shapes only: no memory, no init time
        return Yolact(get_preset(name))


def test_signature_table_covers_every_official_preset():
    assert set(OFFICIAL_SIGNATURES) == set(OFFICIAL_PRESETS)


@pytest.mark.parametrize('name', sorted(OFFICIAL_PRESETS))
def test_state_dict_matches_the_official_layout(name):
    assert _signature(_meta_model(name).state_dict()) == OFFICIAL_SIGNATURES[name]


@pytest.mark.skipif(not os.path.exists(RECORD), reason='no recorded parity results')
def test_recorded_parity_results_agree_with_the_table():
    with open(RECORD) as f:
        doc = json.load(f)
    for name, res in doc['presets'].items():
        sd = res['state_dict']
        assert (sd['num_keys'], sd['keys_sha256']) == OFFICIAL_SIGNATURES[name]
        assert sd['ours_matches_official'] and res['ok'], name


@pytest.mark.parametrize('name,expected', [
    # official rule: block 0 only when the whole stage is DCN, block i > 0 when among the last N
    # and i % interval == 0
    ('yolact_plus_base', {1: [0, 3], 2: [0, 3, 6, 9, 12, 15, 18, 21], 3: [0]}),
    ('yolact_plus_resnet50', {1: [0, 1, 2, 3], 2: [0, 1, 2, 3, 4, 5], 3: [0, 1, 2]}),
    ('yolact_base', {}),
])
def test_dcn_blocks_follow_the_official_rule(name, expected):
    keys = _meta_model(name).state_dict()
    found = {}
    for k in keys:
        if k.endswith('conv2.conv_offset_mask.weight'):
            _, _, stage, block = k.split('.')[:4]
            found.setdefault(int(stage), []).append(int(block))
    assert {s: sorted(b) for s, b in found.items()} == expected
    if expected:
        # official DCN parameter names
        k = 'backbone.layers.1.0.conv2'
        assert {f'{k}.weight', f'{k}.bias', f'{k}.conv_offset_mask.weight',
                f'{k}.conv_offset_mask.bias'} <= set(keys)


# ------------------------------------------------------------------------------------------------
# forward and detect on a real (small) model
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def r50():
    torch.manual_seed(0)
    return Yolact(get_preset('yolact_resnet50')).eval()


@pytest.fixture(scope='module')
def r50_file(r50, tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'yolact_resnet50_54_800000.pth'
    torch.save(r50.state_dict(), path)       # the official flat layout
    return str(path)


def test_forward_outputs(r50):
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        out = r50(x)
    n = out['priors'].shape[0]
    assert out['loc'].shape == (2, n, 4) and out['mask'].shape == (2, n, 32)
    assert out['conf'].shape == (2, n, 81)
    torch.testing.assert_close(out['conf'].sum(-1), torch.ones(2, n))     # softmax in eval
    assert out['mask'].abs().max() <= 1                                   # tanh
    assert out['proto'].shape == (2, 32, 32, 32) and out['proto'].min() >= 0   # [B,Hp,Wp,D], ReLU
    r50.train()
    for m in r50.modules():             # batch statistics would change the numbers
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    try:
        with torch.no_grad():
            tr = r50(x)
    finally:
        r50.eval()
    assert tr['segm'].shape == (2, 80, 16, 16)
    torch.testing.assert_close(tr['conf'].softmax(-1), out['conf'], rtol=1e-4, atol=1e-5)


def test_detect_fixed_size_outputs(r50):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        raw = r50(x)
        # make a few detections certain: priors 0 and 5 of image 0 become class 3, far apart
        raw['conf'][0, :, 0] = 1.0
        raw['conf'][0, :, 1:] = 0.0
        raw['conf'][0, 0, 0], raw['conf'][0, 0, 4] = 0.1, 0.9
        raw['conf'][0, -1, 0], raw['conf'][0, -1, 4] = 0.3, 0.7
        raw['conf'][1, :, 0] = 1.0
        raw['conf'][1, :, 1:] = 0.0     # image 1: nothing
        det = r50.detect(raw, max_detections=5)
    assert det['boxes'].shape == (2, 5, 4) and det['masks'].shape == (2, 5, 32, 32)
    # Image 0: the two class-3 detections first. Like the official Fast NMS (no second threshold),
    # the candidates' zero scores in the other classes' lists survive NMS too and fill the rest.
    assert det['num_detections'].tolist() == [5, 0]
    assert det['classes'][0, :2].tolist() == [3, 3] and set(det['classes'][0, 2:].tolist()) != {3}
    assert det['indices'][0, :2].tolist() == [0, raw['priors'].shape[0] - 1]
    torch.testing.assert_close(det['scores'][0], torch.tensor([0.9, 0.7, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(det['mask_scores'], det['scores'])     # no re-scoring in YOLACT
    assert det['masks'][0].flatten(1).max(1).values.min() > 0
    # Image 1: no candidates, every slot is padding
    assert det['classes'][1].tolist() == [-1] * 5 and det['indices'][1].tolist() == [-1] * 5
    assert torch.all(det['masks'][1] == 0) and torch.all(det['boxes'][1] == 0)


# ------------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------------
def _one_line(exc):
    msg = str(exc.value)
    assert '\n' not in msg and msg
    return msg


def test_official_file_loads_strictly_with_the_preset_from_its_name(r50, r50_file):
    model = load_model(r50_file)
    assert model.config.name == 'yolact_resnet50' and not model.training
    for k, v in r50.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_official_compat_keys_are_dropped(r50, tmp_path):
    sd = dict(r50.state_dict())
    sd['fpn.downsample_layers.2.weight'] = torch.zeros(256, 256, 3, 3)   # v1.0 extra layer
    sd['backbone.layer1.0.conv1.weight'] = torch.zeros(1)               # pre-1.0 duplicate
    path = tmp_path / 'yolact_resnet50_1_10.pth'
    torch.save(sd, path)
    load_model(str(path))


def test_our_checkpoint_roundtrip(r50, tmp_path):
    path = tmp_path / 'any_name.pth'
    save_checkpoint(str(path), r50)
    model = load_model(str(path))               # preset from the file's meta, not its name
    assert model.config == r50.config
    assert [p.name for p in tmp_path.iterdir()] == ['any_name.pth']    # no temp files left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask               # not mkstemp's 0600


def test_missing_and_directory(tmp_path):
    with pytest.raises(CheckpointError) as e:
        load_model(str(tmp_path / 'nope.pth'))
    assert 'not found' in _one_line(e)
    with pytest.raises(CheckpointError) as e:
        load_model(str(tmp_path))
    assert 'directory' in _one_line(e)


def test_corrupt_and_truncated(r50_file, tmp_path):
    bad = tmp_path / 'yolact_resnet50_1_1.pth'
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError) as e:
        load_model(str(bad))
    assert 'corrupt' in _one_line(e)
    with open(r50_file, 'rb') as f:
        data = f.read()
    cut = tmp_path / 'yolact_resnet50_2_2.pth'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError) as e:
        load_model(str(cut))
    assert 'truncated' in _one_line(e)
    other = tmp_path / 'yolact_resnet50_3_3.pth'
    torch.save([1, 2, 3], other)
    with pytest.raises(CheckpointError) as e:
        load_model(str(other))
    assert 'not a YOLACT checkpoint' in _one_line(e)


def test_wrong_preset(r50_file):
    # R-50 weights read as R-101: the extra blocks are missing
    with pytest.raises(CheckpointError) as e:
        load_model(r50_file, preset='yolact_base')
    msg = _one_line(e)
    assert "does not match preset 'yolact_base'" in msg and 'missing keys' in msg
    # R-50 weights read as DarkNet-53: missing and unexpected keys
    with pytest.raises(CheckpointError) as e:
        load_model(r50_file, preset='yolact_darknet53')
    assert 'unexpected keys' in _one_line(e)


def test_shape_mismatch(r50):
    sd = dict(r50.state_dict())
    sd['prediction_layers.0.conf_layer.weight'] = torch.zeros(3 * 21, 256, 3, 3)   # 20 classes
    fresh = Yolact(get_preset('yolact_resnet50'))
    with pytest.raises(CheckpointError) as e:
        load_state_dict_strict(fresh, sd, 'x.pth')
    assert 'differ in shape' in _one_line(e) and 'conf_layer' in str(e.value)


def test_unknown_preset_and_uninferable_name(r50_file, tmp_path):
    with pytest.raises(ConfigError) as e:
        load_model(r50_file, preset='yolact_tiny')
    msg = _one_line(e)
    assert "unknown preset 'yolact_tiny'" in msg and 'yolact_base' in msg
    plain = tmp_path / 'weights.pth'
    plain.write_bytes(open(r50_file, 'rb').read())
    with pytest.raises(ConfigError) as e:
        load_model(str(plain))
    assert 'cannot tell the preset' in _one_line(e)


@pytest.mark.parametrize('name,expected', [
    ('yolact_base_54_800000.pth', 'yolact_base'),
    ('weights/yolact_plus_resnet50_54_800000.pth', 'yolact_plus_resnet50'),
    ('yolact_darknet53_54_800000.pth', 'yolact_darknet53'),
    ('yolact_im700_54_800000_interrupt.pth', 'yolact_im700'),   # official SavePath drops it
    ('yolact_resnet50.pth', 'yolact_resnet50'),
    ('yolact_unknown_1_2.pth', None),
    ('model.pth', None),
])
def test_preset_from_filename(name, expected):
    assert preset_from_filename(name) == expected
    if expected:
        assert get_preset(expected + '_config').name == expected    # official spelling


# -- FPN input scales (our EfficientNet-Lite presets; empty in every official layout) ------------
def _fpn(scales, channels=(8, 12, 16)):
    from yolact_deploy.config import FPNConfig
    from yolact_deploy.model.heads import FPN
    torch.manual_seed(0)
    return FPN(list(channels), FPNConfig(num_features=8, input_scales=scales))


def test_fpn_input_scales_equal_scaled_lateral_weights():
    # The lateral conv is linear: scaling its input by s is the same as scaling its weights by s.
    scales = (0.125, 0.5, 3.0)
    scaled, plain = _fpn(scales), _fpn(())
    plain.load_state_dict(scaled.state_dict())
    with torch.no_grad():
        # lat_layers are stored deepest stage first
        for lat, s in zip(plain.lat_layers, reversed(scales)):
            lat.weight.mul_(s)
    feats = [torch.randn(2, c, 16 // 2 ** i, 16 // 2 ** i) for i, c in enumerate((8, 12, 16))]
    for a, b in zip(scaled(feats), plain(feats)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(_fpn(())(feats)[0], scaled(feats)[0])


def test_fpn_input_scales_must_match_the_stages():
    with pytest.raises(ValueError, match='input_scales has 2 entries for 3'):
        _fpn((1.0, 2.0))


def test_input_scales_survive_the_checkpoint(tmp_path):
    from yolact_deploy.checkpoint import config_from_dict
    cfg = get_preset('yolact_lite0_256')
    assert cfg.fpn.input_scales and not get_preset('yolact_base').fpn.input_scales
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
