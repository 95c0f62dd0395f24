"""Comparison job: what fine-tuning removed, as in the DeSRA paper's Table 3.

Compares detections on the outputs before fine-tuning (``before``, B) with detections on the fine-tuned outputs
(``after``, A): mean detected area before and after, removal rate (regions of B in which A has no pixel, pooled over
images) and addition rate (images where A has pixels outside B). With ``gt`` it also gives the IoU of each detection
against the ground truth (the paper's "IoU before / after").

Example::

    from desra_basicsr.jobs.compare import CompareSettings, run
    result = run(CompareSettings(before='masks_before', after='masks_after', json='compare.json'))
    print(result.summary['removal_rate'], result.per_image['chelsea'])
"""
from dataclasses import dataclass, field
from typing import Any, Dict, Literal, Optional

from desra_basicsr.constants import MASK_CHANNEL_CHOICES
from desra_basicsr.folders import check_out_file
from desra_basicsr.jobs.progress import progress_bar
from desra_basicsr.settings import Settings, setting


@dataclass(frozen=True)
class CompareSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        before (str): Folder of masks detected before fine-tuning.
        after (str): Folder of masks detected after fine-tuning.
        gt (str | None): Folder of ground-truth masks: adds IoU before / after.
        json (str | None): Write the settings, ``summary`` and ``per_image`` to this JSON file.
        mask_channel (int | None): Channel of colour masks (RGBA order), see
            :func:`desra_basicsr.image_io.decode_mask`.
        progress (bool): Show a progress bar.
    """
    before: str = setting(kind='path')
    after: str = setting(kind='path')
    gt: Optional[str] = setting(None, kind='path')
    json: Optional[str] = setting(None, kind='path')
    mask_channel: Optional[Literal[MASK_CHANNEL_CHOICES]] = None
    progress: bool = True


@dataclass
class CompareResult:
    """Result of :func:`run`.

    Attributes:
        summary (dict): ``images``, ``area_before``, ``area_after`` (percent), ``removal_rate``, ``addition_rate``
            (percent), ``n_regions_before``, ``n_removed``, ``images_with_additions``; with ``gt`` also
            ``gt_images``, ``iou_before``, ``iou_after``.
        per_image (dict): The same figures per image stem.
    """
    summary: Dict[str, Any]
    per_image: Dict[str, Dict[str, Any]] = field(default_factory=dict)


def run(settings: CompareSettings) -> CompareResult:
    """Compare detections before and after fine-tuning.

    Args:
        settings (CompareSettings): Folders to compare.

    Returns:
        CompareResult: The figures (also written to ``settings.json`` when given).

    Raises:
        DesraSettingsError: For unusable settings, before any mask is read.
        DesraInputError: If a mask cannot be read, or masks of one image differ in size.
    """
    from desra_basicsr.evaluation.folders import align_to, pair_masks, read_mask_pair, write_json
    from desra_basicsr.evaluation.mask_metrics import FinetuneComparison, iou
    from desra_basicsr.image_io import read_mask, stem

    folders = {'before': settings.before, 'after': settings.after, 'gt': settings.gt}
    if settings.json:
        check_out_file(settings.json, {k: v for k, v in folders.items() if v}, '--json')
    pairs = pair_masks(settings.before, settings.after, names=('before', 'after'))
    gt_paths = {}
    if settings.gt:
        gt_paths = {stem(b): g for b, g in pair_masks(settings.before, settings.gt, names=('before', 'gt'))}
    comparison = FinetuneComparison()
    iou_before, iou_after = [], []
    for before_path, after_path in progress_bar(settings.progress, 'compare')(pairs):
        name = stem(before_path)
        before, after = read_mask_pair(before_path, after_path, settings.mask_channel)
        values = comparison.add(name, before, after)
        gt_path = gt_paths.get(name)
        if gt_path is not None:
            gt = align_to(read_mask(gt_path, settings.mask_channel), before.shape, gt_path)
            values['iou_before'] = 100.0 * iou(before, gt)
            values['iou_after'] = 100.0 * iou(after, gt)
            iou_before.append(values['iou_before'])
            iou_after.append(values['iou_after'])
    summary = comparison.summary()
    if iou_before:
        summary['gt_images'] = len(iou_before)
        summary['iou_before'] = sum(iou_before) / len(iou_before)
        summary['iou_after'] = sum(iou_after) / len(iou_after)
    result = CompareResult(summary=summary, per_image=comparison.per_image)
    if settings.json:
        write_json(settings.json, {
            'before': settings.before,
            'after': settings.after,
            'gt': settings.gt,
            'summary': summary,
            'per_image': comparison.per_image
        })
    return result
