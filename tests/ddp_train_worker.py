"""Run by ``tests/test_train.py`` under torchrun: 2 CPU processes (gloo) train the tiny preset with
DistributedDataParallel; rank 0 records whether every rank ends with the same parameters."""
import json
import os
import pathlib
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_train import options, tiny_config  # noqa: E402  (the unit tests' tiny preset)

from yolact_deploy.train import Trainer  # noqa: E402


def main():
    work = pathlib.Path(sys.argv[1])
    torch.set_num_threads(1)
    cfg = tiny_config(max_iter=3, lr=1e-3)
    trainer = Trainer(options(work, cfg, batch_size=4, augment=False, save_every=2))
    before = torch.cat([p.detach().flatten() for p in trainer.model.parameters()]).clone()
    result = trainer.train()
    after = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    gathered = [torch.empty_like(after) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, after)
    if dist.get_rank() == 0:
        doc = {'world': dist.get_world_size(), 'iterations': result['iterations'],
               'images_rank0': result['images'],
               'max_diff_across_ranks': max(float((g - after).abs().max()) for g in gathered),
               'moved': float((after - before).abs().max())}
        (work / 'ddp_result.json').write_text(json.dumps(doc))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
