"""Fusion job: fuse the outputs of several SR models region by region (:mod:`desra_basicsr.detection.fusion`).

For each image stem present in every input folder, the candidates (one per folder, in the given order) are scored:
with ``mse``, by DeSRA's indicator against the MSE-SR output (``1 - D``), which is also the source of last resort
where every candidate has an artifact; otherwise by a trained artifact localiser's probability
(``localizer_config`` / ``localizer_checkpoint``). Each region then comes from the candidate with the lowest score,
blended with feathered borders (Zhao, "The Cross-Domain Application Research of a Super-Resolution Semantic
Artifact Rectification Method"; see docs/localizer-fusion.md).

With ``lr`` (the folder of the LR inputs the candidates were made from), every candidate and the fallback first get
the LR image's low frequencies (:func:`desra_basicsr.detection.colour_fix.colour_fix`, Gaussian ``colour_sigma``),
before scoring: a candidate whose colours drift then neither wins regions with wrong colours nor brings them in.

Writes, for each stem:

* ``OUT/<stem>.png``: the fused image;
* ``OUT/maps/<stem>.png``: uint8 map of the source of each pixel: ``k`` for the k-th input folder (from 0), and
  the number of input folders for the MSE-SR fallback;
* ``OUT/summary.json`` (:mod:`desra_basicsr.jobs.core`): the settings (``sources``: the folder of each index) and
  per image ``shares`` (fraction of the image taken from each source, by folder index), ``height``, ``width``
  (:class:`FuseRecord`).

Example::

    from desra_basicsr.jobs.fuse import FuseRecord, FuseSettings, run
    result = run(FuseSettings(inputs=('sr/gan', 'sr/finetuned', 'sr/gan2'), out='fused', mse='sr/mse'))
    print(FuseRecord.done(result)['chelsea'].shares)
"""
import os.path as osp
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from desra_basicsr.errors import DesraSettingsError, settings_phase
from desra_basicsr.folders import check_out_dir, pair_inputs
from desra_basicsr.jobs.core import FolderJob, JobItem, JobResult, local_rank, run_job
from desra_basicsr.jobs.records import ItemRecord
from desra_basicsr.settings import Settings, normalise_path, setting

if TYPE_CHECKING:
    from desra_basicsr.detection.fusion import FusionConfig
    from desra_basicsr.localizer.predictor import ArtifactLocalizer

#: Role names of the input folders in messages: ``--inputs #1``, ``--inputs #2``, ...
INPUT_ROLE = 'inputs #{}'
#: Largest sigma and margin (pixels).
MAX_PIXELS = 1000.0


@dataclass(frozen=True)
class FuseSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        inputs (Sequence[str]): Two or more folders of SR outputs of the same LR images (same stems and sizes); the
            order is the preference among equally good candidates.
        out (str): Output folder.
        mse (str | None): Folder of MSE-SR outputs: DeSRA scores and the fallback source.
        lr (str | None): Folder of the LR inputs (same stems): colour fix of every source before scoring.
        colour_sigma (float): Gaussian sigma (SR pixels) of the colour fix: coarser frequencies come from the LR;
            the default, 8, is two LR pixels at x4 (chosen on the demo's fine-tune photos and on its training
            split's Real-ESRGAN-degraded LR images, see the README).
        localizer_config (str | None): ``localizer_config.py`` of ``desra localizer train`` (scores without
            ``mse``).
        localizer_checkpoint (str | None): The matching ``localizer.pth``.
        region_sigma (float): Gaussian sigma (pixels) smoothing the scores before the choice (0: per pixel).
        margin (int): Radius (pixels) by which each candidate's artifacts are grown before the choice.
        feather_sigma (float): Gaussian sigma (pixels) of the blending at region borders (0: hard borders).
        artifact_threshold (float | None): Score at which a candidate counts as an artifact (the fallback is used
            where all do); None: 0.3 for DeSRA scores (DeSRA-det's ``D < 0.7``), 0.5 for localiser probabilities.
        tie_margin (float): Candidates within this score of the best count as equally good.
        device (str): Localiser device: ``cpu``, ``cuda`` or ``cuda:N``.
        overwrite (bool): Recompute every output even when an earlier run with other settings wrote them.
        progress (bool): Show a progress bar.
    """
    inputs: Sequence[str]
    out: str = setting(kind='path')
    mse: Optional[str] = setting(None, kind='path')
    lr: Optional[str] = setting(None, kind='path')
    colour_sigma: float = setting(8.0, lo=0, lo_open=True, hi=MAX_PIXELS)
    localizer_config: Optional[str] = setting(None, kind='path')
    localizer_checkpoint: Optional[str] = setting(None, kind='path')
    region_sigma: float = setting(4.0, lo=0, hi=MAX_PIXELS)
    margin: int = setting(9, lo=0, hi=MAX_PIXELS)
    feather_sigma: float = setting(3.0, lo=0, hi=MAX_PIXELS)
    artifact_threshold: Optional[float] = setting(None, lo=0, hi=1)
    tie_margin: float = setting(0.02, lo=0, hi=1)
    device: str = setting('cpu', kind='device')
    overwrite: bool = False
    progress: bool = True

    def check(self) -> None:
        """Two or more candidate folders (made absolute) and one source of scores."""
        count = 1 if isinstance(self.inputs, str) else len(self.inputs)
        if count < 2:
            raise DesraSettingsError(f'--inputs: fusion needs at least 2 folders of candidates, got {count}')
        if not all(self.inputs):
            raise DesraSettingsError('--inputs: give non-empty folder paths')
        object.__setattr__(self, 'inputs', tuple(normalise_path(str(p)) for p in self.inputs))
        if self.mse and self.use_localizer:
            raise DesraSettingsError('give --mse (DeSRA scores, MSE-SR fallback) or --localizer-config / '
                                     '--localizer-checkpoint (localiser scores), not both')
        if not self.mse and not self.use_localizer:
            raise DesraSettingsError('fusion needs artifact scores: give --mse (DeSRA against the MSE-SR outputs) '
                                     'or --localizer-config and --localizer-checkpoint (a trained localiser)')

    @property
    def use_localizer(self) -> bool:
        """Whether the scores come from a trained localiser (else DeSRA against ``mse``)."""
        return bool(self.localizer_config or self.localizer_checkpoint)


@dataclass(frozen=True)
class FuseRecord(ItemRecord):
    """``summary.json`` record of one fused image.

    Attributes:
        shares (list[float]): Fraction of the image taken from each source, by folder index.
        height (int): Image height.
        width (int): Image width.
    """
    shares: List[float]
    height: int
    width: int


def input_roles(inputs: Sequence[str]) -> List[str]:
    """Role name of each input folder, for messages (``inputs #1`` ...).

    Args:
        inputs (Sequence[str]): The input folders.

    Returns:
        list[str]: One role per folder.
    """
    return [INPUT_ROLE.format(i + 1) for i in range(len(inputs))]


def run(settings: FuseSettings) -> JobResult:
    """Fuse every stem present in all input folders (see the module docstring).

    Args:
        settings (FuseSettings): Inputs, scoring and output.

    Returns:
        JobResult: Counts of this run; ``items`` holds each image's record (:class:`FuseRecord`).

    Raises:
        DesraSettingsError: Missing or empty folders, unusable localiser files or device, before any work.
    """
    inputs = dict(zip(input_roles(settings.inputs), settings.inputs))
    if settings.mse:
        inputs['mse'] = settings.mse
    if settings.lr:
        inputs['lr'] = settings.lr
    check_out_dir(settings.out, inputs)
    pairs, failures = pair_inputs(inputs)

    from desra_basicsr.image_io import stem

    with settings_phase():
        cfg, localizer = _scoring(settings)
    maps_dir = osp.join(settings.out, 'maps')
    items = [
        JobItem(stem(paths[0]), tuple(paths),
                (osp.join(settings.out, f'{stem(paths[0])}.png'), osp.join(maps_dir, f'{stem(paths[0])}.png')))
        for paths in pairs
    ]
    hashed = {'localizer_config': settings.localizer_config,
              'localizer_checkpoint': settings.localizer_checkpoint} if localizer else {}
    return run_job(
        FolderJob(
            command='fuse',
            out_dir=settings.out,
            input_dirs=inputs,
            settings=_recorded_settings(settings, cfg),
            items=items,
            process=_processor(settings, cfg, localizer),
            weights=hashed,
            failures=failures),
        overwrite=settings.overwrite,
        progress=settings.progress)


def _scoring(settings: FuseSettings) -> Tuple['FusionConfig', Optional['ArtifactLocalizer']]:
    """The fusion settings and, for localiser scores, the loaded localiser (after the device check)."""
    from desra_basicsr.detection.fusion import DESRA_ARTIFACT_SCORE, PROBABILITY_ARTIFACT_SCORE, FusionConfig
    from desra_basicsr.devices import resolve_device

    device = resolve_device(settings.device, local_rank())
    threshold = settings.artifact_threshold
    if threshold is None:
        threshold = DESRA_ARTIFACT_SCORE if settings.mse else PROBABILITY_ARTIFACT_SCORE
    cfg = FusionConfig(
        region_sigma=settings.region_sigma,
        margin=settings.margin,
        feather_sigma=settings.feather_sigma,
        artifact_threshold=threshold,
        tie_margin=settings.tie_margin)
    localizer = None
    if settings.use_localizer:
        from desra_basicsr.localizer.predictor import ArtifactLocalizer
        localizer = ArtifactLocalizer(settings.localizer_config, settings.localizer_checkpoint, str(device))
    return cfg, localizer


def _recorded_settings(settings: FuseSettings, cfg: 'FusionConfig') -> Dict[str, Any]:
    """What ``summary.json`` records: the sources by index, the scoring and the fusion settings."""
    colour = {'lr': settings.lr, 'colour_sigma': settings.colour_sigma} if settings.lr else {}
    return {
        'sources': list(settings.inputs) + ([settings.mse] if settings.mse else []),
        'fallback': settings.mse,
        'scores': 'localizer' if settings.use_localizer else 'desra',
        'localizer_config': settings.localizer_config,
        'localizer_checkpoint': settings.localizer_checkpoint,
        'region_sigma': cfg.region_sigma,
        'margin': cfg.margin,
        'feather_sigma': cfg.feather_sigma,
        'artifact_threshold': cfg.artifact_threshold,
        'tie_margin': cfg.tie_margin,
        **colour,
    }


def _processor(settings: FuseSettings, cfg: 'FusionConfig',
               localizer: Optional['ArtifactLocalizer']) -> Callable[[JobItem], Dict[str, Any]]:
    """The work on one stem: read the candidates, score them, fuse, write the image and its source map."""
    from desra_basicsr.detection.colour_fix import colour_fix
    from desra_basicsr.detection.fusion import check_candidates, desra_scores, fuse
    from desra_basicsr.errors import DesraInputError
    from desra_basicsr.image_io import read_image, write_image

    n = len(settings.inputs)

    def process(item: JobItem) -> Dict[str, Any]:
        images = [read_image(path) for path in item.inputs]
        candidates, fallback = images[:n], (images[n] if settings.mse else None)
        try:
            check_candidates(candidates, fallback, names=item.inputs)  # before scoring: errors name the files
        except ValueError as err:
            raise DesraInputError(str(err)) from err
        if settings.lr:
            lr = images[-1]
            try:
                candidates = [colour_fix(img, lr, settings.colour_sigma) for img in candidates]
                fallback = None if fallback is None else colour_fix(fallback, lr, settings.colour_sigma)
            except ValueError as err:
                raise DesraInputError(f'{item.inputs[-1]}: {err}') from err
        try:
            scores = desra_scores(candidates, fallback) if localizer is None else [
                localizer.probability(img) for img in candidates
            ]
            result = fuse(candidates, scores, fallback, cfg, names=item.inputs)
        except ValueError as err:  # images smaller than the indicator window: all have the first one's size
            raise DesraInputError(f'{item.inputs[0]}: {err}') from err
        write_image(item.outputs[1], result.index_map)
        write_image(item.outputs[0], result.image)
        return FuseRecord([round(float(s), 6) for s in result.shares], int(result.image.shape[0]),
                          int(result.image.shape[1])).fields()

    return process
