"""DeSRA-det: detect the inference artifacts of a GAN-SR model against its MSE-SR twin (paper section 3.1).

Pure numpy / torch / OpenCV / SciPy code: nothing here imports BasicSR or mmsegmentation (the mmseg segmenter
backend, :mod:`desra_basicsr.detection.mmseg_segmenter`, is imported only when that backend is selected). The names
below are loaded on first use, so importing a light submodule (``methods`` for the method list) stays light.
"""
import importlib
from typing import Any

#: Exported name -> submodule that defines it.
_EXPORTS = {
    'ADE20K_CLASSES': 'class_weights',
    'DEFAULT_TABLE': 'class_weights',
    'ClassWeights': 'class_weights',
    'apply_class_weights': 'class_weights',
    'load_class_weights': 'class_weights',
    'DeSRADetector': 'detector',
    'DetectionResult': 'detector',
    'IndicatorConfig': 'indicator',
    'indicator_numpy': 'indicator',
    'indicator_torch': 'indicator',
    'METHODS': 'methods',
    'build_detector': 'methods',
    'MorphologyConfig': 'morphology',
    'clean_mask': 'morphology',
    'remove_small_regions': 'morphology',
    'threshold_map': 'morphology',
    'NoneSegmenter': 'segmenters',
    'Segmenter': 'segmenters',
    'build_segmenter': 'segmenters',
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
