"""Segmenter interface of the semantic-aware adjustment (DeSRA-det step 3) and its backends.

A segmenter turns an ``HxWx3`` uint8 BGR image into an ``HxW`` label map (class indices at the image size) and
says which classes its labels mean. Backends:

* ``none``: no segmentation; the detector then uses weight 1 everywhere (the paper's "without semantics"
  ablation). This is what runs when no segmentation checkpoint is given.
* ``mmseg``: any mmsegmentation model (default SegFormer mit-b5 ADE20K 640x640, as the authors used), in
  :mod:`desra_basicsr.detection.mmseg_segmenter`, imported only when selected so the detection core never
  imports mmseg.
"""
import abc
import importlib
from typing import Callable, Dict, Optional, Tuple

import numpy as np


class Segmenter(abc.ABC):
    """Base class of segmenters.

    Attributes:
        name (str): Backend name.
        class_names (tuple[str, ...] | None): Class of each label, in label order; None for the ``none`` backend.
        source (str): What the model was built from (config / checkpoint paths), for error messages and logs.
    """
    name = 'base'

    def __init__(self, class_names: Optional[Tuple[str, ...]] = None, source: str = '') -> None:
        self.class_names = class_names
        self.source = source

    @property
    def num_classes(self) -> int:
        """Number of classes the labels can take (0 for the ``none`` backend)."""
        return 0 if self.class_names is None else len(self.class_names)

    @abc.abstractmethod
    def segment(self, img: np.ndarray) -> Optional[np.ndarray]:
        """Label map of an image.

        Args:
            img (np.ndarray): ``HxWx3`` uint8 BGR image.

        Returns:
            np.ndarray | None: ``HxW`` int64 labels at the image size, or None when the backend segments nothing.
        """


class NoneSegmenter(Segmenter):
    """The ``none`` backend: no labels, so every pixel keeps weight 1."""
    name = 'none'

    def segment(self, img: np.ndarray) -> None:
        """Segment nothing.

        Args:
            img (np.ndarray): Ignored.

        Returns:
            None
        """
        return None


def _mmseg_backend(**kwargs) -> Segmenter:
    """Build the mmseg backend (imported lazily: it pulls in mmseg/mmengine)."""
    module = importlib.import_module('desra_basicsr.detection.mmseg_segmenter')
    return module.MMSegSegmenter(**kwargs)


#: Backend name -> factory taking the backend's keyword arguments.
SEGMENTER_BACKENDS: Dict[str, Callable[..., Segmenter]] = {
    'none': lambda **kwargs: NoneSegmenter(),
    'mmseg': _mmseg_backend,
}


def build_segmenter(backend: str, **kwargs) -> Segmenter:
    """Build a segmenter by backend name.

    Args:
        backend (str): ``'none'`` or ``'mmseg'``.
        **kwargs: Backend arguments (``mmseg``: ``config``, ``checkpoint``, ``device``; ``none``: ignored).

    Returns:
        Segmenter: The segmenter.

    Raises:
        ValueError: For an unknown backend name.
    """
    if backend not in SEGMENTER_BACKENDS:
        raise ValueError(f'unknown segmenter backend {backend!r}; choose from {sorted(SEGMENTER_BACKENDS)}')
    return SEGMENTER_BACKENDS[backend](**kwargs)
