"""COCO-format data and SSD-style augmentation for training."""
from .augment import ssd_augment
from .coco import (CocoDataset, Sample, SampleError, classes_from_annotations, decode_segmentation,
                   read_annotations)

__all__ = ['CocoDataset', 'Sample', 'SampleError', 'classes_from_annotations',
           'decode_segmentation', 'read_annotations', 'ssd_augment']
