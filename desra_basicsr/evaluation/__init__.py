"""Measuring side of DeSRA: mask metrics, labelme ground truth, per-class calibration and visual reports.

Pure numpy / OpenCV code: nothing here imports BasicSR or mmsegmentation (the semantic segmenter used by
calibration comes from :mod:`desra_basicsr.detection`, and the report's computed pseudo-GT from its one eq. 10 merge,
:class:`~desra_basicsr.detection.pseudo_gt.ArtifactMaskTransform`).
"""
from desra_basicsr.evaluation.mask_metrics import (DetectionScores, FinetuneComparison, has_addition, iou,
                                                   region_precision, region_recall, removal_counts)

__all__ = [
    'DetectionScores', 'FinetuneComparison', 'has_addition', 'iou', 'region_precision', 'region_recall',
    'removal_counts'
]
