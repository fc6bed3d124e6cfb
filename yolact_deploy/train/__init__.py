"""Training: prior matching, losses, LR schedule and the trainer behind ``yolact-train``."""
from .loss import YolactLoss, mask_iou, ohem_conf_loss, semantic_segmentation_loss
from .match import match
from .schedule import lr_at
from .trainer import Trainer, TrainOptions

__all__ = ['Trainer', 'TrainOptions', 'YolactLoss', 'lr_at', 'mask_iou', 'match', 'ohem_conf_loss',
           'semantic_segmentation_loss']
