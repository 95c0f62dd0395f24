"""Artifact-mask metrics for BasicSR validation (``METRIC_REGISTRY``).

BasicSR calls a metric as ``func(img=..., img2=..., **opt)`` with the options of ``val.metrics.<name>`` minus
``type``. For these metrics:

* ``img`` is the **detected** artifact mask of one validation image (e.g. DeSRA-det run on the model's output);
* ``img2`` is the **ground-truth** artifact mask (e.g. a labelme mask);

both ``HxW`` or ``HxWx1`` / ``HxWx3`` arrays as BasicSR's ``tensor2img`` returns them (uint8 0..255: a pixel is
artifact when its first channel is > ``threshold``, default 127) or bool arrays. Values are per image; BasicSR
averages them over the validation set (so precision / recall here are means of per-image ratios, not the pooled
ratios of ``desra evaluate``). Edge cases follow :mod:`desra_basicsr.evaluation.mask_metrics`.

Example option block::

    val:
      metrics:
        mask_iou:
          type: calculate_mask_iou
          crop_border: 0
"""
import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY

from desra_basicsr.evaluation.mask_metrics import DEFAULT_P, iou, region_precision, region_recall


def _to_mask(img: np.ndarray, threshold: float, crop_border: int) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 3:
        img = img[:, :, 0]
    mask = img if img.dtype == bool else img > threshold
    if crop_border:
        mask = mask[crop_border:-crop_border, crop_border:-crop_border]
    return mask


@METRIC_REGISTRY.register()
def calculate_mask_iou(img: np.ndarray,
                       img2: np.ndarray,
                       crop_border: int = 0,
                       threshold: float = 127,
                       **kwargs) -> float:
    """IoU (x100) of a detected mask against a ground-truth mask.

    Args:
        img (np.ndarray): Detected artifact mask.
        img2 (np.ndarray): Ground-truth artifact mask, same size.
        crop_border (int): Pixels cropped from each side of both masks before scoring.
        threshold (float): Pixels above it are artifact (ignored for bool masks).

    Returns:
        float: IoU x 100.
    """
    return 100.0 * iou(_to_mask(img, threshold, crop_border), _to_mask(img2, threshold, crop_border))


@METRIC_REGISTRY.register()
def calculate_mask_precision(img: np.ndarray,
                             img2: np.ndarray,
                             crop_border: int = 0,
                             threshold: float = 127,
                             p: float = DEFAULT_P,
                             **kwargs) -> float:
    """Region precision of a detected mask: detected 8-connected regions covered >= ``p`` by the GT, over all.

    Args:
        img (np.ndarray): Detected artifact mask.
        img2 (np.ndarray): Ground-truth artifact mask, same size.
        crop_border (int): Pixels cropped from each side before scoring.
        threshold (float): Pixels above it are artifact (ignored for bool masks).
        p (float): Overlap fraction.

    Returns:
        float: Precision in [0, 1].
    """
    return region_precision(_to_mask(img, threshold, crop_border), _to_mask(img2, threshold, crop_border), p)


@METRIC_REGISTRY.register()
def calculate_mask_recall(img: np.ndarray,
                          img2: np.ndarray,
                          crop_border: int = 0,
                          threshold: float = 127,
                          p: float = DEFAULT_P,
                          **kwargs) -> float:
    """Region recall of a detected mask: GT 8-connected regions covered >= ``p`` by the detection, over all.

    Args:
        img (np.ndarray): Detected artifact mask.
        img2 (np.ndarray): Ground-truth artifact mask, same size.
        crop_border (int): Pixels cropped from each side before scoring.
        threshold (float): Pixels above it are artifact (ignored for bool masks).
        p (float): Overlap fraction.

    Returns:
        float: Recall in [0, 1].
    """
    return region_recall(_to_mask(img, threshold, crop_border), _to_mask(img2, threshold, crop_border), p)
