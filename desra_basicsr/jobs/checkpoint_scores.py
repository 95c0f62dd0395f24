"""Scores of the checkpoints of a DeSRA fine-tune on a validation split, for choosing its length.

For each checkpoint (:attr:`~desra_basicsr.jobs.finetune.FinetuneResult.checkpoints`), on the validation split's LR
images (never trained on):

1. super-resolution with that generator (:mod:`desra_basicsr.jobs.sr`, ``OUT/iter_<N>/sr/``);
2. DeSRA-det against the split's MSE-SR outputs (:mod:`desra_basicsr.jobs.detect`, ``OUT/iter_<N>/masks/``), with
   the detection settings the before-masks were made with (``detect_options``);
3. the comparison with the before-masks (:mod:`desra_basicsr.jobs.compare`, ``OUT/iter_<N>/compare.json``): area,
   removal and addition rates;
4. the GAN-SR detail kept outside the before-masks (:mod:`desra_basicsr.evaluation.detail`).

The table (:class:`~desra_basicsr.evaluation.selection.CheckpointScore` per checkpoint) is written to
``OUT/scores.json``; :func:`~desra_basicsr.evaluation.selection.choose_checkpoint` picks from it. Steps 1-2 are
folder jobs (:mod:`desra_basicsr.jobs.core`), so an interrupted scoring resumes image by image.

Example::

    from desra_basicsr.evaluation.selection import choose_checkpoint
    from desra_basicsr.jobs.checkpoint_scores import CheckpointScoreSettings, score_checkpoints
    table = score_checkpoints(CheckpointScoreSettings(
        out='runs/scores', lr='val/lr', mse='val/sr_mse', gan='val/sr_gan', masks='val/masks_before',
        opt=finetuned.options, checkpoints=tuple(finetuned.checkpoints.items())))
    best, reason = choose_checkpoint(table)
"""
import json
import os.path as osp
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.evaluation.selection import CheckpointScore
from desra_basicsr.settings import Settings, setting
from desra_basicsr.utils import atomic_write_path

if TYPE_CHECKING:
    from desra_basicsr.evaluation.detail import DetailSummary


@dataclass(frozen=True)
class CheckpointScoreSettings(Settings):
    """Settings of :func:`score_checkpoints`.

    Attributes:
        out (str): Output folder (``iter_<N>/`` per checkpoint, ``scores.json``).
        lr (str): The validation split's LR images.
        mse (str): Their MSE-SR outputs (the detection reference).
        gan (str): Their GAN-SR outputs (the detail reference).
        masks (str): The masks detected on the GAN-SR outputs before fine-tuning.
        opt (str): Option file whose ``network_g`` builds the generator (the fine-tune's derived options).
        checkpoints (tuple): ``(iteration, weights file)`` pairs; a mapping is accepted and stored sorted.
        param_key (str | None): Checkpoint key (None: the option file's ``path.param_key_g``, as BasicSR).
        detect_options (tuple): ``(field, value)`` pairs of :class:`~desra_basicsr.jobs.detect.DetectSettings`
            (threshold, min_area, seg_checkpoint, ...), as the before-masks were detected.
        device (str): ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        overwrite (bool): Recompute outputs made from other weights or settings (e.g. a fine-tune run again).
        progress (bool): Show progress bars.
    """
    out: str = setting(kind='path')
    lr: str = setting(kind='path')
    mse: str = setting(kind='path')
    gan: str = setting(kind='path')
    masks: str = setting(kind='path')
    opt: str = setting(kind='path')
    checkpoints: Tuple[Tuple[int, str], ...] = ()
    param_key: Optional[str] = None
    detect_options: Tuple[Tuple[str, Any], ...] = ()
    device: str = setting('cpu', kind='device')
    overwrite: bool = False
    progress: bool = True

    def check(self) -> None:
        """At least one checkpoint, iterations distinct and non-negative; detection options by field name."""
        pairs = self.checkpoints.items() if isinstance(self.checkpoints, dict) else self.checkpoints
        try:
            checked = tuple(sorted((int(it), osp.abspath(str(path))) for it, path in pairs))
        except (TypeError, ValueError):
            raise DesraSettingsError('checkpoints: give (iteration, weights file) pairs') from None
        if not checked:
            raise DesraSettingsError('checkpoints: give at least one (iteration, weights file) pair')
        if len({it for it, _ in checked}) != len(checked) or checked[0][0] < 0:
            raise DesraSettingsError('checkpoints: iterations must be distinct and not negative')
        object.__setattr__(self, 'checkpoints', checked)
        object.__setattr__(self, 'detect_options', tuple(dict(self.detect_options).items()))
        reserved = {'mse', 'gan', 'out', 'device', 'progress', 'overwrite'} & {k for k, _ in self.detect_options}
        if reserved:
            raise DesraSettingsError(f'detect_options: {", ".join(sorted(reserved))} are set by the scoring')


def detail_kept(gan: str, candidate: str, masks: str) -> 'DetailSummary':
    """The GAN-SR detail a candidate's outputs keep outside the before-masks, image by image.

    Args:
        gan (str): Folder of GAN-SR outputs (the reference; its images are the ones measured).
        candidate (str): Folder of the outputs to judge (``<stem>.png``: a fine-tuned model's or MSE-SR's).
        masks (str): Folder of the before-masks (``<stem>.png``).

    Returns:
        DetailSummary: Per image and mean ``std_ratio`` and ``mad``.

    Raises:
        DesraInputError: If an image or mask is missing or cannot be read, or the sizes differ.
    """
    from desra_basicsr.evaluation.detail import DetailSummary
    from desra_basicsr.image_io import list_images, read_image, read_mask, stem

    summary = DetailSummary()
    for name in list_images(gan):
        png = f'{stem(name)}.png'
        try:
            summary.add(stem(name), read_image(osp.join(gan, name)), read_image(osp.join(candidate, png)),
                        read_mask(osp.join(masks, png)))
        except ValueError as err:
            raise DesraInputError(f'{osp.join(candidate, png)}: {err}') from err
    return summary


def score_one(settings: CheckpointScoreSettings, iteration: int, weights: str) -> Tuple[CheckpointScore, dict]:
    """Score one checkpoint (steps 1-4 of the module docstring) in ``OUT/iter_<N>/``.

    Args:
        settings (CheckpointScoreSettings): The scoring settings.
        iteration (int): The checkpoint's iteration.
        weights (str): Its generator weights.

    Returns:
        tuple: The :class:`CheckpointScore` and the per-image figures (``compare`` and ``detail``).
    """
    from desra_basicsr.jobs import compare, detect, sr

    folder = osp.join(settings.out, f'iter_{iteration}')
    sr_dir, masks_dir = osp.join(folder, 'sr'), osp.join(folder, 'masks')
    sr.run(sr.SRSettings(
        input=settings.lr, out=sr_dir, opt=settings.opt, weights=weights, param_key=settings.param_key,
        device=settings.device, overwrite=settings.overwrite,
        progress=settings.progress)).require_all_done(f'scoring, iteration {iteration} sr')
    detect.run(detect.DetectSettings(
        mse=settings.mse, gan=sr_dir, out=masks_dir, device=settings.device, overwrite=settings.overwrite,
        progress=settings.progress,
        **dict(settings.detect_options))).require_all_done(f'scoring, iteration {iteration} detect')
    compared = compare.run(compare.CompareSettings(before=settings.masks, after=masks_dir,
                                                   json=osp.join(folder, 'compare.json'), progress=False))
    detail = detail_kept(settings.gan, sr_dir, settings.masks)
    s = compared.summary
    score = CheckpointScore(iter=iteration, area=float(s['area_after']), addition_rate=float(s['addition_rate']),
                            removal_rate=float(s['removal_rate']), detail=detail.mean('std_ratio'))
    return score, {'compare': compared.per_image, 'detail': detail.per_image}


def score_checkpoints(settings: CheckpointScoreSettings) -> List[CheckpointScore]:
    """Score every checkpoint on the validation split; resumable (see the module docstring).

    Args:
        settings (CheckpointScoreSettings): Validation folders, generator option file, checkpoints, detection.

    Returns:
        list[CheckpointScore]: One row per checkpoint, by iteration (also in ``OUT/scores.json``).

    Raises:
        DesraSettingsError: For unusable settings (folders, option file, weights), before any checkpoint is scored.
        DesraInputError: When an image fails.
    """
    from desra_basicsr.folders import check_out_dir, pair_inputs

    inputs = {'lr': settings.lr, 'mse': settings.mse, 'gan': settings.gan, 'masks': settings.masks}
    check_out_dir(settings.out, inputs)
    pair_inputs({'mse': settings.mse, 'gan': settings.gan, 'masks': settings.masks})
    for path in [settings.opt] + [weights for _, weights in settings.checkpoints]:
        if not osp.isfile(path):
            raise DesraSettingsError(f'{path}: file not found (scoring the fine-tune\'s checkpoints)')
    table, per_image = [], {}
    for iteration, weights in settings.checkpoints:
        score, figures = score_one(settings, iteration, weights)
        table.append(score)
        per_image[str(iteration)] = figures
    with atomic_write_path(osp.join(settings.out, 'scores.json')) as tmp:
        with open(tmp, 'w') as f:
            json.dump({'scores': [asdict(s) for s in table], 'per_image': per_image}, f, indent=2)
    return table


def read_scores(path: str) -> List[CheckpointScore]:
    """The table of a ``scores.json`` written by :func:`score_checkpoints`.

    Args:
        path (str): The file.

    Returns:
        list[CheckpointScore]: The rows.
    """
    with open(path, 'r') as f:
        return [CheckpointScore(**row) for row in json.load(f)['scores']]


#: The jobs' entry-point name (``run(settings)``).
run = score_checkpoints
