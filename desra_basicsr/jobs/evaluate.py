"""Evaluation job: IoU, region precision and recall of detected masks against ground truth (paper Table 1).

Two modes:

* score a folder of detections (``pred``) against ground-truth masks (``gt``);
* ``sweep``: run detection methods at several thresholds on MSE-SR / GAN-SR outputs and score each against the
  ground truth in one pass (paper Tables 1, 4 and 5), see :mod:`desra_basicsr.evaluation.sweep`.

IoU is averaged over images (x100); precision and recall count 8-connected regions covered at least ``p``, pooled
over all images. Masks and ground truth must have the same size, or differ by exactly the DeSRA release's 5-pixel
border (:func:`desra_basicsr.evaluation.folders.align_to`).

Example::

    from desra_basicsr.jobs.evaluate import EvaluateSettings, run
    result = run(EvaluateSettings(gt='gt_masks', pred='masks'))
    print(result.mean['iou'], result.mean['precision'], result.mean['recall'])
"""
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, Iterable, List, Literal, Optional

from desra_basicsr.constants import MASK_CHANNEL_CHOICES, MIN_AREA
from desra_basicsr.detection.methods import METHODS
from desra_basicsr.errors import DesraSettingsError, settings_phase
from desra_basicsr.folders import check_out_file, pair_inputs
from desra_basicsr.jobs.core import local_rank
from desra_basicsr.jobs.detect import MAX_AREA, MAX_THRESHOLD
from desra_basicsr.jobs.progress import progress_bar
from desra_basicsr.settings import Settings, check_number, setting
from desra_basicsr.utils import notice

DEFAULT_P = 0.5
#: Methods a sweep compares: those that detect against the MSE-SR output with no file of their own.
SWEEP_METHODS = tuple(name for name, method in METHODS.items() if method.needs_mse and not method.files)


@dataclass(frozen=True)
class EvaluateSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        gt (str): Folder of ground-truth masks.
        pred (str | None): Folder of detected masks (score mode).
        p (float): Overlap fraction for a region to count.
        json (str | None): Write per-image and mean values to this JSON file.
        mask_channel (int | None): Channel of colour masks (RGBA order), see
            :func:`desra_basicsr.image_io.decode_mask`.
        sweep (bool): Sweep mode: run ``methods`` at ``thresholds`` on ``mse`` / ``gan``.
        mse (str | None): Folder of MSE-SR outputs (sweep mode).
        gan (str | None): Folder of GAN-SR outputs (sweep mode).
        methods (list[str] | None): Detection methods (default: all).
        thresholds (list[float] | None): Thresholds of DeSRA-det and its ablations (default: 0.7).
        seg_config (str | None): mmseg config of the semantic methods.
        seg_checkpoint (str | None): mmseg checkpoint; without it the semantic methods run without segmentation.
        class_table (str | None): Class-weight table (default: the DeSRA release table).
        min_area (int): Smallest region kept by DeSRA-det.
        device (str): Device of the detectors and the segmenter.
        progress (bool): Show a progress bar.
    """
    gt: str = setting(kind='path')
    pred: Optional[str] = setting(None, kind='path')
    p: float = setting(DEFAULT_P, lo=0, hi=1)
    json: Optional[str] = setting(None, kind='path')
    mask_channel: Optional[Literal[MASK_CHANNEL_CHOICES]] = None
    sweep: bool = False
    mse: Optional[str] = setting(None, kind='path')
    gan: Optional[str] = setting(None, kind='path')
    methods: Optional[List[str]] = None
    thresholds: Optional[List[float]] = setting(None, lo=0, hi=MAX_THRESHOLD)
    seg_config: Optional[str] = setting(None, kind='path')
    seg_checkpoint: Optional[str] = setting(None, kind='path')
    class_table: Optional[str] = setting(None, kind='path')
    min_area: int = setting(MIN_AREA, lo=0, hi=MAX_AREA)
    device: str = setting('cpu', kind='device')
    progress: bool = True

    def check(self) -> None:
        """The folders of the mode; sweep: known methods and thresholds in the range of ``desra detect``."""
        if not self.sweep:
            if not self.pred:
                raise DesraSettingsError('--pred: required (or use --sweep with --mse/--gan)')
            return
        if not (self.mse and self.gan):
            raise DesraSettingsError('--sweep: needs --mse and --gan folders')
        unknown = [m for m in self.methods or () if m not in SWEEP_METHODS]
        if unknown:
            raise DesraSettingsError(f'--methods: unknown {unknown}; choose from {", ".join(SWEEP_METHODS)}')
        spec = next(f for f in fields(self) if f.name == 'thresholds').metadata['desra']
        for t in self.thresholds or ():
            check_number('--thresholds', t, spec)


@dataclass
class EvaluateResult:
    """Scores of :func:`run`.

    Attributes:
        images (int): Images scored.
        p (float): The overlap fraction used.
        mean (dict | None): Score mode: ``iou`` (x100, averaged over images), ``precision``, ``recall``,
            ``n_pred_regions``, ``n_gt_regions``, ``images``; None in sweep mode.
        per_image (dict): Score mode: the same scores per image stem.
        results (list[dict]): Sweep mode: per method and threshold ``{'method', 'threshold', 'mean', 'per_image'}``
            (``threshold`` None for the LDL baselines, which carry theirs in their name).
    """
    images: int
    p: float = DEFAULT_P
    mean: Optional[Dict[str, Any]] = None
    per_image: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    results: List[Dict[str, Any]] = field(default_factory=list)


def run(settings: EvaluateSettings) -> EvaluateResult:
    """Score detections against ground truth, or sweep methods and thresholds.

    Args:
        settings (EvaluateSettings): What to score.

    Returns:
        EvaluateResult: The scores (also written to ``settings.json`` when given).

    Raises:
        DesraSettingsError: For unusable settings, before any image is read.
        DesraInputError: If a mask or image cannot be read or aligned, or (sweep) a pair cannot be detected: sizes
            that differ, an image smaller than the indicator window (the message names the file).
    """
    if settings.json:
        folders = {'gt': settings.gt, 'pred': settings.pred, 'mse': settings.mse, 'gan': settings.gan}
        check_out_file(settings.json, {k: v for k, v in folders.items() if v}, '--json')
    progress = progress_bar(settings.progress, 'sweep' if settings.sweep else 'evaluate')
    result = _sweep(settings, progress) if settings.sweep else _score(settings, progress)
    if settings.json:
        from desra_basicsr.evaluation.folders import write_json
        if settings.sweep:
            data = {'mse': settings.mse, 'gan': settings.gan, 'gt': settings.gt, 'p': settings.p,
                    'results': result.results}
        else:
            data = {'pred': settings.pred, 'gt': settings.gt, 'p': settings.p, 'mean': result.mean,
                    'per_image': result.per_image}
        write_json(settings.json, data)
    return result


def _score(settings: EvaluateSettings, progress: Callable[[Iterable], Iterable]) -> EvaluateResult:
    from desra_basicsr.evaluation.folders import pair_masks, read_mask_pair
    from desra_basicsr.evaluation.mask_metrics import DetectionScores
    from desra_basicsr.image_io import stem

    pairs = pair_masks(settings.pred, settings.gt)
    scores = DetectionScores(p=settings.p)
    for pred_path, gt_path in progress(pairs):
        scores.add(stem(pred_path), *read_mask_pair(pred_path, gt_path, settings.mask_channel))
    summary = scores.summary()
    return EvaluateResult(images=summary['images'], p=settings.p, mean=summary, per_image=scores.per_image)


def _sweep(settings: EvaluateSettings, progress: Callable[[Iterable], Iterable]) -> EvaluateResult:
    from desra_basicsr.devices import resolve_device

    methods = settings.methods or SWEEP_METHODS
    device = str(resolve_device(settings.device, local_rank()))
    triples, missing = pair_inputs({'mse': settings.mse, 'gan': settings.gan, 'gt': settings.gt})
    if missing:
        notice(f'{len(missing)} image(s) lack a partner in --mse / --gan / --gt, not scored: '
               f'{", ".join(sorted(missing)[:5])}')
    if not triples:
        raise DesraSettingsError(f'{settings.gt}: no image present in --mse, --gan and --gt')

    from desra_basicsr.detection.class_weights import load_class_weights
    from desra_basicsr.detection.morphology import MorphologyConfig
    from desra_basicsr.detection.segmenters import build_segmenter
    from desra_basicsr.evaluation.sweep import build_entries, run_entries

    semantic = any(METHODS[m].semantics for m in methods)
    with settings_phase():
        segmenter, table = None, None
        if semantic and settings.seg_checkpoint:
            segmenter = build_segmenter(
                'mmseg', config=settings.seg_config, checkpoint=settings.seg_checkpoint, device=device)
            table = load_class_weights(settings.class_table, tuple(segmenter.class_names))
        elif semantic:
            notice('no --seg-checkpoint: semantic methods run without segmentation (all class weights 1)')
        entries = build_entries(methods, settings.thresholds, segmenter, table,
                                MorphologyConfig(min_area=settings.min_area), device, settings.p)
    run_entries(entries, triples, progress=progress, mask_channel=settings.mask_channel)
    results = [{
        'method': entry.method,
        'threshold': entry.threshold,
        'mean': entry.scores.summary(),
        'per_image': entry.scores.per_image
    } for entry in entries]
    return EvaluateResult(images=len(triples), p=settings.p, results=results)
