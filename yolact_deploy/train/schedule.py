"""Learning-rate schedule of the official training: linear warm-up, then step decay."""
from __future__ import annotations


def lr_at(config, iteration: int, base_lr: float = None) -> float:
    """LR for ``iteration`` (0-based): warm-up from ``lr_warmup_init`` to ``lr`` over
    ``lr_warmup_until`` iterations, then ``lr * gamma ** (number of lr_steps passed)``."""
    lr = config.lr if base_lr is None else base_lr
    if config.lr_warmup_until > 0 and iteration < config.lr_warmup_until:
        return (lr - config.lr_warmup_init) * iteration / config.lr_warmup_until + config.lr_warmup_init
    steps = sum(1 for s in config.lr_steps if iteration >= s)
    return lr * config.gamma ** steps
