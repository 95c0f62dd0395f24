"""Artifact-mask metrics of the DeSRA paper (section 4.1 and 4.3), as pure numpy functions.

All functions take binary masks (``HxW`` arrays; non-zero / True is artifact) of the same shape.

Definitions (paper section 4.1, matching the authors' released metric scripts):
    * **IoU** of one image: ``|pred & gt| / |pred | gt|``. A data set's IoU is the mean of the per-image values;
      the paper reports it x100.
    * **Region precision** ``N_T / N_S``: ``N_S`` is the number of 8-connected regions of the prediction, ``N_T``
      the number of those whose covered fraction (pixels of the region inside the GT mask / region area) is
      ``>= p`` (default 0.5, ``>=`` as in the release).
    * **Region recall** ``N_R / N_G``: ``N_G`` is the number of 8-connected GT regions, ``N_R`` the number of those
      covered ``>= p`` by the prediction.
    * A data set's precision and recall pool the counts over all images (``sum N_T / sum N_S``), as the release
      does, rather than averaging per-image ratios.
    * **Removal rate** (after fine-tuning): a region of the detection before fine-tuning (B) is removed when the
      detection after fine-tuning (A) has no pixel in it; rate = removed regions / regions of B, pooled.
    * **Addition rate**: an image gains new artifacts when A has any pixel outside B; rate = such images / images.

Edge cases (one rule for every ratio): a ratio whose denominator is zero is **1.0 when both masks are empty**
(nothing to find and nothing found, e.g. IoU of two empty masks, precision and recall with no regions on either
side, removal rate when neither B nor A has any artifact) and **0.0 otherwise** (e.g. IoU with an empty GT and a
non-empty prediction; precision when nothing was detected but the GT has regions; recall when the GT is empty but
something was detected; removal rate when B is empty but A found artifacts).
"""
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Tuple

import cv2
import numpy as np

DEFAULT_P = 0.5


def as_bool_mask(mask: np.ndarray) -> np.ndarray:
    """Return ``mask`` as an ``HxW`` bool array (non-zero is True); an ``HxWx1`` array is squeezed.

    Args:
        mask (np.ndarray): Binary mask, any numeric or bool dtype.

    Returns:
        np.ndarray: ``HxW`` bool array.

    Raises:
        ValueError: If the array is not two-dimensional (after squeezing one trailing channel).
    """
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.ndim != 2:
        raise ValueError(f'a mask must be HxW, got shape {mask.shape}')
    return mask if mask.dtype == bool else mask != 0


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    pred, gt = as_bool_mask(pred), as_bool_mask(gt)
    if pred.shape != gt.shape:
        raise ValueError(f'mask shapes differ: {pred.shape} vs {gt.shape}')
    return pred, gt


def safe_ratio(num: float, den: float, both_empty: bool) -> float:
    """``num / den`` with the module's zero-denominator rule (1.0 when both sides are empty, else 0.0).

    Args:
        num (float): Numerator.
        den (float): Denominator.
        both_empty (bool): Whether both masks (or sets of regions) being compared are empty.

    Returns:
        float: The ratio.
    """
    if den == 0:
        return 1.0 if both_empty else 0.0
    return float(num) / float(den)


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two binary masks, in [0, 1] (both empty: 1.0; one empty: 0.0).

    Args:
        pred (np.ndarray): Detected mask.
        gt (np.ndarray): Ground-truth mask, same shape.

    Returns:
        float: IoU.
    """
    pred, gt = _check_pair(pred, gt)
    inter = np.count_nonzero(pred & gt)
    union = np.count_nonzero(pred | gt)
    return safe_ratio(inter, union, both_empty=union == 0)


def label_regions(mask: np.ndarray) -> Tuple[int, np.ndarray, np.ndarray]:
    """Label the 8-connected regions of a binary mask.

    Args:
        mask (np.ndarray): Binary mask.

    Returns:
        tuple: ``(n, labels, areas)``: the number of regions, an ``int32`` label image (0 background, 1..n
        regions) and the ``(n + 1,)`` pixel count of each label (index 0 the background).
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        np.ascontiguousarray(as_bool_mask(mask), dtype=np.uint8), connectivity=8, ltype=cv2.CV_32S)
    return count - 1, labels, stats[:, cv2.CC_STAT_AREA]


def covered_regions(regions: np.ndarray, other: np.ndarray, p: float = DEFAULT_P) -> Tuple[int, int]:
    """Count the 8-connected regions of ``regions`` covered at least ``p`` by ``other``.

    A region counts when ``pixels inside other >= p * region area`` (``>=``, so ``p`` exactly met counts).

    Args:
        regions (np.ndarray): Mask whose regions are counted.
        other (np.ndarray): Covering mask, same shape.
        p (float): Overlap fraction in [0, 1].

    Returns:
        tuple: ``(n_covered, n_regions)``.
    """
    regions, other = _check_pair(regions, other)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f'overlap fraction p must be in [0, 1], got {p}')
    n, labels, area = label_regions(regions)
    if n == 0:
        return 0, 0
    inside = np.bincount(labels[other & regions], minlength=n + 1)
    return int(np.count_nonzero(inside[1:] >= p * area[1:])), n


def region_precision(pred: np.ndarray, gt: np.ndarray, p: float = DEFAULT_P) -> float:
    """Region precision ``N_T / N_S`` of one image (zero-denominator rule of the module).

    Args:
        pred (np.ndarray): Detected mask.
        gt (np.ndarray): Ground-truth mask.
        p (float): Overlap fraction.

    Returns:
        float: Precision in [0, 1].
    """
    hit, total = covered_regions(pred, gt, p)
    return safe_ratio(hit, total, both_empty=total == 0 and not as_bool_mask(gt).any())


def region_recall(pred: np.ndarray, gt: np.ndarray, p: float = DEFAULT_P) -> float:
    """Region recall ``N_R / N_G`` of one image (zero-denominator rule of the module).

    Args:
        pred (np.ndarray): Detected mask.
        gt (np.ndarray): Ground-truth mask.
        p (float): Overlap fraction.

    Returns:
        float: Recall in [0, 1].
    """
    hit, total = covered_regions(gt, pred, p)
    return safe_ratio(hit, total, both_empty=total == 0 and not as_bool_mask(pred).any())


def removal_counts(before: np.ndarray, after: np.ndarray) -> Tuple[int, int]:
    """Count the regions of ``before`` in which ``after`` has no pixel.

    Args:
        before (np.ndarray): Detection on the outputs before fine-tuning (B).
        after (np.ndarray): Detection on the fine-tuned outputs (A).

    Returns:
        tuple: ``(n_removed, n_regions_before)``.
    """
    before, after = _check_pair(before, after)
    n, labels, _ = label_regions(before)
    if n == 0:
        return 0, 0
    touched = np.unique(labels[after & before])
    return n - int(np.count_nonzero(touched)), n


def has_addition(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether ``after`` has any artifact pixel outside ``before`` (the image gained new artifacts).

    Args:
        before (np.ndarray): Detection before fine-tuning (B).
        after (np.ndarray): Detection after fine-tuning (A).

    Returns:
        bool: True when A has a pixel outside B.
    """
    before, after = _check_pair(before, after)
    return bool(np.any(after & ~before))


@dataclass
class DetectionScores:
    """Streaming accumulator of IoU / region precision / region recall over a data set.

    Feed one image at a time with :meth:`add`; memory holds only the per-image numbers.

    Attributes:
        p (float): Overlap fraction of the region metrics.
        per_image (dict): ``name -> per-image values`` (see :meth:`add`).
    """
    p: float = DEFAULT_P
    per_image: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def add(self, name: str, pred: np.ndarray, gt: np.ndarray) -> Dict[str, float]:
        """Score one image and remember its values.

        Args:
            name (str): Image name (key of :attr:`per_image`).
            pred (np.ndarray): Detected mask.
            gt (np.ndarray): Ground-truth mask, same shape.

        Returns:
            dict: ``iou`` (x100), ``precision``, ``recall`` of this image, the region counts ``n_pred_regions``,
            ``n_pred_correct``, ``n_gt_regions``, ``n_gt_found`` and the pixel fractions ``pred_area``,
            ``gt_area`` (percent of the image).
        """
        pred, gt = _check_pair(pred, gt)
        n_pred_correct, n_pred = covered_regions(pred, gt, self.p)
        n_gt_found, n_gt = covered_regions(gt, pred, self.p)
        pred_empty, gt_empty = not pred.any(), not gt.any()
        values = {
            'iou': 100.0 * iou(pred, gt),
            'precision': safe_ratio(n_pred_correct, n_pred, both_empty=pred_empty and gt_empty),
            'recall': safe_ratio(n_gt_found, n_gt, both_empty=pred_empty and gt_empty),
            'n_pred_regions': n_pred,
            'n_pred_correct': n_pred_correct,
            'n_gt_regions': n_gt,
            'n_gt_found': n_gt_found,
            'pred_area': 100.0 * np.count_nonzero(pred) / pred.size,
            'gt_area': 100.0 * np.count_nonzero(gt) / gt.size,
        }
        self.per_image[name] = values
        return values

    def summary(self) -> Dict[str, float]:
        """Data-set values: mean IoU (x100) over images, pooled precision and recall.

        Returns:
            dict: ``images``, ``iou``, ``precision``, ``recall`` and the pooled counts.
        """
        rows = list(self.per_image.values())
        n_pred = sum(r['n_pred_regions'] for r in rows)
        n_gt = sum(r['n_gt_regions'] for r in rows)
        nothing = n_pred == 0 and n_gt == 0
        return {
            'images': len(rows),
            'iou': float(np.mean([r['iou'] for r in rows])) if rows else 0.0,
            'precision': safe_ratio(sum(r['n_pred_correct'] for r in rows), n_pred, both_empty=nothing),
            'recall': safe_ratio(sum(r['n_gt_found'] for r in rows), n_gt, both_empty=nothing),
            'n_pred_regions': n_pred,
            'n_pred_correct': sum(r['n_pred_correct'] for r in rows),
            'n_gt_regions': n_gt,
            'n_gt_found': sum(r['n_gt_found'] for r in rows),
        }


@dataclass
class FinetuneComparison:
    """Streaming accumulator of the paper's Table 3 figures: detections before (B) and after (A) fine-tuning.

    Attributes:
        per_image (dict): ``name -> per-image values`` (see :meth:`add`).
    """
    per_image: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def add(self, name: str, before: np.ndarray, after: np.ndarray) -> Dict[str, float]:
        """Compare one image's detections.

        Args:
            name (str): Image name.
            before (np.ndarray): Detection before fine-tuning (B).
            after (np.ndarray): Detection after fine-tuning (A), same shape.

        Returns:
            dict: ``area_before``, ``area_after`` (percent of the image), ``n_regions_before``, ``n_removed``,
            ``removal_rate`` (this image, percent) and ``added`` (1 when A has pixels outside B, else 0).
        """
        before, after = _check_pair(before, after)
        n_removed, n_before = removal_counts(before, after)
        values = {
            'area_before': 100.0 * np.count_nonzero(before) / before.size,
            'area_after': 100.0 * np.count_nonzero(after) / after.size,
            'n_regions_before': n_before,
            'n_removed': n_removed,
            'removal_rate': 100.0 * safe_ratio(n_removed, n_before, both_empty=not after.any()),
            'added': int(has_addition(before, after)),
        }
        self.per_image[name] = values
        return values

    def summary(self) -> Dict[str, float]:
        """Data-set values: mean areas, pooled removal rate and addition rate (percent).

        Returns:
            dict: ``images``, ``area_before``, ``area_after``, ``removal_rate``, ``addition_rate``, and counts.
        """
        rows = list(self.per_image.values())
        n_before = sum(r['n_regions_before'] for r in rows)
        n_removed = sum(r['n_removed'] for r in rows)
        added = sum(r['added'] for r in rows)
        any_after = any(r['area_after'] > 0 for r in rows)
        return {
            'images': len(rows),
            'area_before': _mean(r['area_before'] for r in rows),
            'area_after': _mean(r['area_after'] for r in rows),
            'n_regions_before': n_before,
            'n_removed': n_removed,
            'removal_rate': 100.0 * safe_ratio(n_removed, n_before, both_empty=not any_after),
            'images_with_additions': added,
            'addition_rate': 100.0 * added / len(rows) if rows else 0.0,
        }


def _mean(values: Iterable[float]) -> float:
    values: List[float] = list(values)
    return float(np.mean(values)) if values else 0.0
