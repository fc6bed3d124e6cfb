"""Training throughput and peak memory on this CPU.

Two sources, both written to ``benchmarks/results/train_cpu.json`` (merged by key):

- ``--measure``: runs ``--iters`` training iterations of a preset on real COCO images (after one
  warm-up iteration) in this process and records seconds per iteration, images/s and peak RSS;
- ``--from-log RUN_DIR``: summarises a finished ``yolact-train`` run from its ``train_log.csv``
  (images/s over the whole run, loss at start and end); ``--peak-rss-mib`` adds the peak memory
  sampled from the running process (``VmHWM``).

The machine is shared: the 1-minute load average before and after is stored with every number.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, 'results', 'train_cpu.json')
DATA = os.path.join(HERE, '..', '..', 'shared', 'data', 'coco_mini')


def _machine():
    import torch
    return {'cpu_count': os.cpu_count(), 'torch_threads': torch.get_num_threads(),
            'torch': torch.__version__, 'python': platform.python_version(),
            'load_avg_1min': round(os.getloadavg()[0], 2)}


def measure(args):
    import torch
    torch.set_num_threads(args.threads)
    from yolact_deploy.config import get_preset
    from yolact_deploy.train import Trainer, TrainOptions
    cfg = get_preset(args.config)
    opts = TrainOptions(config=cfg.replace(max_iter=args.iters + 1), out_dir=args.out,
                        image_dir=os.path.join(args.data, 'train2017'),
                        ann_file=os.path.join(args.data, 'annotations', 'instances_train2017.json'),
                        batch_size=args.batch_size, save_every=0, tensorboard=False, progress=False,
                        freeze_bn=True, freeze_stages=args.freeze_stages, clip_grad=150)
    machine = _machine()
    trainer = Trainer(opts)
    t0 = time.time()
    rows = []
    trainer.train()
    with open(os.path.join(args.out, 'train_log.csv')) as f:
        rows = list(csv.DictReader(f))
    timed = rows[1:]                                   # first iteration is warm-up
    seconds = sum(float(r['seconds']) for r in timed)
    images = sum(int(r['images']) for r in timed)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {'config': args.config, 'input_size': cfg.max_size, 'batch_size': args.batch_size,
            'freeze_stages': args.freeze_stages, 'iterations_timed': len(timed),
            'seconds_per_iteration': round(seconds / max(len(timed), 1), 3),
            'images_per_s': round(images / max(seconds, 1e-9), 3), 'peak_rss_mib': round(peak),
            'wall_s': round(time.time() - t0, 1), 'machine_before': machine,
            'load_avg_1min_after': round(os.getloadavg()[0], 2)}


def from_log(args):
    with open(os.path.join(args.from_log, 'train_log.csv')) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f'error: {args.from_log}/train_log.csv has no rows')
    seconds = sum(float(r['seconds']) for r in rows)
    images = sum(int(r['images']) for r in rows)
    first, last = rows[0], rows[-1]
    def tail_mean(key, n=10):
        vals = [float(r[key]) for r in rows[-n:]]
        return round(sum(vals) / len(vals), 3)
    out = {'run': os.path.basename(os.path.normpath(args.from_log)), 'iterations': len(rows),
           'images': images, 'compute_seconds': round(seconds, 1),
           'images_per_s': round(images / seconds, 3),
           'seconds_per_iteration': round(seconds / len(rows), 2),
           'loss_first': round(float(first['loss']), 3), 'loss_last': round(float(last['loss']), 3),
           'loss_last10_mean': tail_mean('loss'),
           'terms_first': {k: round(float(first[k]), 3) for k in ('B', 'C', 'M', 'S')},
           'terms_last10_mean': {k: tail_mean(k) for k in ('B', 'C', 'M', 'S')},
           'machine': _machine()}
    if args.wall_s:
        out['wall_s'] = args.wall_s
    if args.peak_rss_mib:
        out['peak_rss_mib'] = args.peak_rss_mib
    if args.notes:
        out['notes'] = args.notes
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--measure', action='store_true')
    p.add_argument('--from-log', help='a yolact-train output folder')
    p.add_argument('--key', help='name of the entry in the results json')
    p.add_argument('--config', default='yolact_lite0_256')
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--freeze-stages', type=int, default=2)
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--data', default=DATA)
    p.add_argument('--out', default='/tmp/yolact_train_bench')
    p.add_argument('--wall-s', type=float)
    p.add_argument('--peak-rss-mib', type=float)
    p.add_argument('--notes', help='free text stored with a --from-log entry (threads, segments ...)')
    p.add_argument('--results', default=RESULTS)
    args = p.parse_args()
    if not (args.measure or args.from_log):
        p.error('pass --measure or --from-log RUN_DIR')
    entry = measure(args) if args.measure else from_log(args)
    key = args.key or ('measure_' + args.config if args.measure else 'run_' + entry['run'])
    results = {}
    if os.path.exists(args.results):
        with open(args.results) as f:
            results = json.load(f)
    results[key] = entry
    tmp = args.results + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, args.results)
    print(json.dumps({key: entry}, indent=2))


if __name__ == '__main__':
    main()
