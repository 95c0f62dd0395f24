"""DeSRA-det: detect the inference artifacts of a GAN-SR model against its MSE-SR twin (DESIGN.md section 1.1).

Pure numpy / torch / OpenCV / SciPy code: nothing here imports BasicSR or mmsegmentation (the mmseg segmenter
backend, :mod:`desra_basicsr.detection.mmseg_segmenter`, is imported only when that backend is selected).
"""
from desra_basicsr.detection.class_weights import (ADE20K_CLASSES, DEFAULT_TABLE, ClassWeights, apply_class_weights,
                                                   load_class_weights)
from desra_basicsr.detection.detector import DeSRADetector, DetectionResult
from desra_basicsr.detection.indicator import IndicatorConfig, indicator_map, indicator_numpy, indicator_torch
from desra_basicsr.detection.methods import METHODS, build_detector
from desra_basicsr.detection.morphology import MorphologyConfig, clean_mask, remove_small_regions, threshold_map
from desra_basicsr.detection.segmenters import NoneSegmenter, Segmenter, build_segmenter

__all__ = [
    'ADE20K_CLASSES', 'DEFAULT_TABLE', 'ClassWeights', 'apply_class_weights', 'load_class_weights', 'DeSRADetector',
    'DetectionResult', 'IndicatorConfig', 'indicator_map', 'indicator_numpy', 'indicator_torch', 'METHODS',
    'build_detector', 'MorphologyConfig', 'clean_mask', 'remove_small_regions', 'threshold_map', 'NoneSegmenter',
    'Segmenter', 'build_segmenter'
]
