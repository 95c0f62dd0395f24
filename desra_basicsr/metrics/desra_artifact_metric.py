"""``desra_artifact_ratio``: how much of an SR output DeSRA-det marks as artifact (lower is better).

BasicSR calls a metric as ``func(**metric_data, **opt)``. For this metric ``img`` is the SR output of the model being
trained and the reference is the **MSE-SR output** of the same LR image: ``img_mse`` when the validation dataset
gives it (``PseudoGTPairedDataset`` with ``dataroot_mse``; ``DeSRAFinetuneModel`` passes it on), otherwise ``img2``
(the validation set's GT, e.g. a ``PairedImageDataset`` whose GT folder holds MSE-SR outputs). All are ``HxWx3``
uint8 BGR arrays as BasicSR's ``tensor2img`` returns them. Detection runs without the semantic adjustment (no
segmentation model during training), through :class:`desra_basicsr.detection.DeSRADetector`.

Example option block (``better: lower`` makes BasicSR track the lowest value as the best)::

    val:
      metrics:
        desra_artifact_ratio:
          type: desra_artifact_ratio
          better: lower
          threshold: 0.7    # D below it is artifact (paper)
          min_area: 4000    # regions of at most this many pixels are dropped (paper, x4 SR scale)
          crop_border: 0
"""
from typing import Optional

import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY

from desra_basicsr.constants import DETECT_THRESHOLD, MIN_AREA
from desra_basicsr.detection import DeSRADetector, MorphologyConfig


@METRIC_REGISTRY.register()
def desra_artifact_ratio(img: np.ndarray,
                         img2: Optional[np.ndarray] = None,
                         img_mse: Optional[np.ndarray] = None,
                         threshold: float = DETECT_THRESHOLD,
                         min_area: int = MIN_AREA,
                         crop_border: int = 0,
                         **kwargs) -> float:
    """Fraction of the SR output's pixels that DeSRA-det (no semantics) marks as artifact against MSE-SR.

    Args:
        img (np.ndarray): SR output, ``HxWx3`` uint8 BGR.
        img2 (np.ndarray | None): Validation GT, used as the MSE-SR reference when ``img_mse`` is absent.
        img_mse (np.ndarray | None): MSE-SR output of the same LR image (preferred reference).
        threshold (float): Indicator threshold (paper: 0.7).
        min_area (int): Regions of at most this many pixels are dropped (paper: 4000 at x4 SR scale).
        crop_border (int): Pixels cropped from each side before detection.
        **kwargs: Other metric options (e.g. ``better``), ignored.

    Returns:
        float: Artifact fraction in [0, 1].

    Raises:
        ValueError: If no reference is given or the sizes differ.
    """
    reference = img_mse if img_mse is not None else img2
    if reference is None:
        raise ValueError('desra_artifact_ratio needs an MSE-SR reference: the validation set\'s GT or its "mse"')
    if reference.shape != img.shape:
        raise ValueError(f'desra_artifact_ratio: SR output {img.shape} and MSE-SR reference {reference.shape} differ')
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
        reference = reference[crop_border:-crop_border, crop_border:-crop_border]
    detector = DeSRADetector(morphology=MorphologyConfig(threshold=threshold, min_area=min_area))
    return detector.detect(reference, img).artifact_fraction
