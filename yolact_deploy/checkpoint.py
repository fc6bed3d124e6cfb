"""Loading official dbolya/yolact checkpoints and our own, with strict key matching.

Two file layouts are read:

- official: a flat state dict (``yolact_base_54_800000.pth`` ...); the preset comes from ``--config``
  or from the file name, as the official ``eval.py`` infers it;
- ours: ``{'model': state_dict, 'meta': {'preset': name, 'config': {...}, ...}}`` as written by
  :func:`save_checkpoint` (``yolact-train``). ``meta['config']`` holds the full preset so custom
  class lists and small presets need no registry entry. Training checkpoints add optimizer state etc.

Files are read with ``torch.load(weights_only=True)``: no code in a checkpoint is ever executed.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Tuple

import torch

from . import config as config_mod
from .errors import CheckpointError, ConfigError
from .deploy.fileio import atomic_output


def _load_file(path: str):
    if not os.path.exists(path):
        raise CheckpointError(f'checkpoint not found: {path}')
    if os.path.isdir(path):
        raise CheckpointError(f'checkpoint path is a directory: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/corrupt/non-torch files
        text = str(exc).strip()
        reason = text.splitlines()[0].split('. ')[0] if text else type(exc).__name__
        raise CheckpointError(f'cannot read checkpoint {path}: corrupt, truncated or not a PyTorch '
                              f'file ({reason[:120]})') from None


def config_from_dict(data: dict) -> config_mod.YolactConfig:
    """Rebuilds a YolactConfig from :meth:`YolactConfig.to_dict` output."""
    def tup(v):
        return tuple(tup(x) for x in v) if isinstance(v, (list, tuple)) else v

    if not isinstance(data, dict):
        raise ConfigError(f'checkpoint carries an invalid config: expected an object, got '
                          f'{type(data).__name__}')
    for part in ('backbone', 'fpn'):
        if not isinstance(data.get(part), dict):
            raise ConfigError(f'checkpoint carries an invalid config: "{part}" must be an object, '
                              f'got {type(data.get(part)).__name__}')
    try:
        fields = {f.name for f in dataclasses.fields(config_mod.YolactConfig)}
        values = {k: tup(v) for k, v in data.items() if k in fields and k not in ('backbone', 'fpn')}
        backbone = config_mod.BackboneConfig(**{k: tup(v) for k, v in data['backbone'].items()})
        fpn = config_mod.FPNConfig(**{k: tup(v) for k, v in data['fpn'].items()})
        return config_mod.YolactConfig(backbone=backbone, fpn=fpn, **values)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f'checkpoint carries an invalid config: {str(exc)[:200]}') from None


def split_checkpoint(obj, path: str) -> Tuple[dict, dict]:
    """Returns (state_dict, meta) for either layout."""
    if not isinstance(obj, dict):
        raise CheckpointError(f'{path} is not a YOLACT checkpoint (found {type(obj).__name__})')
    if 'model' in obj and isinstance(obj['model'], dict):
        meta = obj.get('meta') or {}
        if not isinstance(meta, dict):
            raise CheckpointError(f'{path}: "meta" must be a dictionary, found {type(meta).__name__}')
        if meta.get('preset') is not None and not isinstance(meta['preset'], str):
            raise CheckpointError(f'{path}: "meta.preset" must be a preset name')
        return obj['model'], dict(meta)
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, {}
    raise CheckpointError(f'{path} is not a YOLACT checkpoint (no state dict inside)')


def resolve_config(path: str, meta: dict, preset: Optional[str]) -> config_mod.YolactConfig:
    if preset:
        cfg = config_mod.get_preset(preset)
        if meta.get('config'):
            # Our checkpoint plus an explicit preset: keep the checkpoint's class list etc. only if
            # the user asked for the same preset.
            saved = config_from_dict(meta['config'])
            if saved.name == cfg.name:
                return saved
        return cfg
    if meta.get('config'):
        return config_from_dict(meta['config'])
    if meta.get('preset'):
        return config_mod.get_preset(meta['preset'])
    inferred = config_mod.preset_from_filename(path)
    if inferred is None:
        raise ConfigError(f'cannot tell the preset of {os.path.basename(path)}: pass --config '
                          f'(one of {", ".join(sorted(config_mod.PRESETS))})')
    return config_mod.get_preset(inferred)


def _official_compat(state_dict: dict, cfg) -> dict:
    """The two key clean-ups the official ``Yolact.load_weights`` performs before strict loading."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith('backbone.layer') and not key.startswith('backbone.layers'):
            continue  # pre-1.0 duplicate backbone keys
        if key.startswith('fpn.downsample_layers.') and int(key.split('.')[2]) >= cfg.fpn.num_downsample:
            continue  # v1.0 checkpoints carry an unused extra downsample layer
        out[key] = value
    return out


def load_state_dict_strict(model: torch.nn.Module, state_dict: dict, path: str) -> None:
    own = model.state_dict()
    state_dict = dict(state_dict)
    for key in own:
        # BatchNorm counters are absent from files written before PyTorch 0.4.1; torch itself fills
        # them in for such files, and they do not affect inference.
        if key.endswith('num_batches_tracked') and key not in state_dict:
            state_dict[key] = torch.zeros((), dtype=torch.long)
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        def show(keys):
            return ', '.join(keys[:6]) + (f' ... (+{len(keys) - 6})' if len(keys) > 6 else '')
        parts = []
        if missing:
            parts.append(f'{len(missing)} missing keys: {show(missing)}')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected keys: {show(unexpected)}')
        raise CheckpointError(f'{os.path.basename(path)} does not match preset '
                              f"'{model.config.name}': " + '; '.join(parts))
    bad = [k for k in own if tuple(own[k].shape) != tuple(state_dict[k].shape)]
    if bad:
        k = bad[0]
        raise CheckpointError(
            f"{os.path.basename(path)} does not match preset '{model.config.name}': {len(bad)} "
            f'tensors differ in shape, e.g. {k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}')
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state_dict.items()}, strict=True)


def load_model(path: str, preset: Optional[str] = None, device: str = 'cpu'):
    """Builds the model for a checkpoint and loads it strictly; returns the model in eval mode."""
    from .model import Yolact
    obj = _load_file(path)
    state_dict, meta = split_checkpoint(obj, path)
    cfg = resolve_config(path, meta, preset)
    model = Yolact(cfg)
    load_state_dict_strict(model, _official_compat(state_dict, cfg), path)
    return model.to(device).eval()


def save_checkpoint(path: str, model, extra: Optional[dict] = None, half: bool = False) -> None:
    """Writes ``{'model', 'meta', **extra}`` atomically (temp file + rename, never a partial file)."""
    state = {k: (v.half() if half and v.is_floating_point() else v)
             for k, v in model.state_dict().items()}
    payload = {'model': state, 'meta': {'preset': model.config.name,
                                        'config': model.config.to_dict()}}
    payload.update(extra or {})
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic_output(path, suffix='.pth') as tmp:
            torch.save(payload, tmp)
    except OSError as exc:  # full disk, read-only folder, a directory in the way
        raise CheckpointError(f'cannot write checkpoint {path}: {exc.strerror or exc}') from None
    except RuntimeError as exc:  # torch.save reports a failed write (e.g. ENOSPC) as RuntimeError
        if 'write' not in str(exc).lower() and 'file' not in str(exc).lower():
            raise
        raise CheckpointError(f'cannot write checkpoint {path}: '
                              f'{str(exc).splitlines()[0]}') from None
