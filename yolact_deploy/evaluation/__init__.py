"""COCO box and mask mAP (pycocotools)."""
from .coco_eval import STAT_NAMES, evaluate, evaluate_results, format_table, run_detections

__all__ = ['STAT_NAMES', 'evaluate', 'evaluate_results', 'format_table', 'run_detections']
