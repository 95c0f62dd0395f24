"""Fusion job: fuse the outputs of several SR models region by region (:mod:`desra_basicsr.detection.fusion`).

For each image stem present in every input folder, the candidates (one per folder, in the given order) are scored:
with ``mse``, by DeSRA's indicator against the MSE-SR output (``1 - D``), which is also the source of last resort
where every candidate has an artifact; otherwise by a trained artifact localiser's probability
(``localizer_config`` / ``localizer_checkpoint``). Each region then comes from the candidate with the lowest score,
blended with feathered borders (Zhao, "The Cross-Domain Application Research of a Super-Resolution Semantic
Artifact Rectification Method"; see the README, "Artifact localiser and fusion").

Writes, for each stem:

* ``OUT/<stem>.png``: the fused image;
* ``OUT/maps/<stem>.png``: uint8 map of the source of each pixel: ``k`` for the k-th input folder (from 0), and
  the number of input folders for the MSE-SR fallback;
* ``OUT/summary.json`` (:mod:`desra_basicsr.jobs.core`): the settings (``sources``: the folder of each index) and
  per image ``shares`` (fraction of the image taken from each source, by folder index), ``height``, ``width``.

Example::

    from desra_basicsr.jobs.fuse import FuseSettings, run
    result = run(FuseSettings(inputs=['sr/gan', 'sr/finetuned', 'sr/gan2'], out='fused', mse='sr/mse'))
    print(result.items['chelsea']['shares'])
"""
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence

from desra_basicsr.errors import settings_phase
from desra_basicsr.folders import check_out_dir, pair_inputs
from desra_basicsr.jobs.core import FolderJob, JobItem, JobResult, local_rank, run_job

#: Role names of the input folders in messages: ``--inputs #1``, ``--inputs #2``, ...
INPUT_ROLE = 'inputs #{}'


@dataclass
class FuseSettings:
    """Settings of :func:`run`.

    Attributes:
        inputs (list[str]): Two or more folders of SR outputs of the same LR images (same stems and sizes); the
            order is the preference among equally good candidates.
        out (str): Output folder.
        mse (str | None): Folder of MSE-SR outputs: DeSRA scores and the fallback source.
        localizer_config (str | None): ``localizer_config.py`` of ``desra localizer train`` (scores without
            ``mse``).
        localizer_checkpoint (str | None): The matching ``localizer.pth``.
        region_sigma (float): Gaussian sigma (pixels) smoothing the scores before the choice.
        margin (int): Radius (pixels) by which each candidate's artifacts are grown before the choice.
        feather_sigma (float): Gaussian sigma (pixels) of the blending at region borders.
        artifact_threshold (float | None): Score at which a candidate counts as an artifact (the fallback is used
            where all do); None: 0.3 for DeSRA scores (DeSRA-det's ``D < 0.7``), 0.5 for localiser probabilities.
        tie_margin (float): Candidates within this score of the best count as equally good.
        device (str): Localiser device: ``cpu``, ``cuda`` or ``cuda:N``.
        overwrite (bool): Recompute every output even when an earlier run with other settings wrote them.
        progress (bool): Show a progress bar.
    """
    inputs: Sequence[str]
    out: str
    mse: Optional[str] = None
    localizer_config: Optional[str] = None
    localizer_checkpoint: Optional[str] = None
    region_sigma: float = 4.0
    margin: int = 9
    feather_sigma: float = 3.0
    artifact_threshold: Optional[float] = None
    tie_margin: float = 0.02
    device: str = 'cpu'
    overwrite: bool = False
    progress: bool = True


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
        JobResult: Counts of this run; ``items`` holds each image's ``shares``.

    Raises:
        DesraSettingsError: Fewer than two input folders, no scoring source or two of them, missing or empty
            folders, unusable numbers or localiser files, before any work.
    """
    from desra_basicsr.errors import DesraSettingsError

    if len(settings.inputs) < 2:
        raise DesraSettingsError(f'--inputs: fusion needs at least 2 folders of candidates, got '
                                 f'{len(settings.inputs)}')
    use_localizer = bool(settings.localizer_config or settings.localizer_checkpoint)
    if settings.mse and use_localizer:
        raise DesraSettingsError('give --mse (DeSRA scores, MSE-SR fallback) or --localizer-config / '
                                 '--localizer-checkpoint (localiser scores), not both')
    if not settings.mse and not use_localizer:
        raise DesraSettingsError('fusion needs artifact scores: give --mse (DeSRA against the MSE-SR outputs) or '
                                 '--localizer-config and --localizer-checkpoint (a trained localiser)')
    roles = input_roles(settings.inputs)
    inputs = dict(zip(roles, settings.inputs))
    if settings.mse:
        inputs['mse'] = settings.mse
    check_out_dir(settings.out, inputs)
    pairs, failures = pair_inputs(inputs)

    from desra_basicsr.detection.fusion import (DESRA_ARTIFACT_SCORE, PROBABILITY_ARTIFACT_SCORE, FusionConfig,
                                                check_candidates, desra_scores, fuse)
    from desra_basicsr.errors import DesraInputError
    from desra_basicsr.image_io import read_image, stem, write_image
    from desra_basicsr.inference import resolve_device

    threshold = settings.artifact_threshold
    if threshold is None:
        threshold = DESRA_ARTIFACT_SCORE if settings.mse else PROBABILITY_ARTIFACT_SCORE
    with settings_phase():
        cfg = FusionConfig(
            region_sigma=settings.region_sigma,
            margin=settings.margin,
            feather_sigma=settings.feather_sigma,
            artifact_threshold=threshold,
            tie_margin=settings.tie_margin)
        localizer = None
        if use_localizer:
            from desra_basicsr.localizer.predictor import ArtifactLocalizer
            device = resolve_device(settings.device, local_rank())
            localizer = ArtifactLocalizer(settings.localizer_config, settings.localizer_checkpoint, str(device))
    n = len(settings.inputs)

    def process(item: JobItem) -> dict:
        images = [read_image(path) for path in item.inputs]
        candidates, fallback = images[:n], (images[n] if settings.mse else None)
        try:
            check_candidates(candidates, fallback, names=item.inputs)  # before scoring: errors name the files
            scores = desra_scores(candidates, fallback) if settings.mse else [
                localizer.probability(img) for img in candidates
            ]
            result = fuse(candidates, scores, fallback, cfg, names=item.inputs)
        except DesraInputError:
            raise
        except ValueError as err:  # sizes differ, image smaller than the indicator window
            raise DesraInputError(str(err)) from err
        write_image(item.outputs[1], result.index_map)
        write_image(item.outputs[0], result.image)
        return {
            'shares': [round(float(s), 6) for s in result.shares],
            'height': int(result.image.shape[0]),
            'width': int(result.image.shape[1])
        }

    names = [stem(paths[0]) for paths in pairs]
    maps_dir = osp.join(settings.out, 'maps')
    items = [
        JobItem(name, tuple(paths), (osp.join(settings.out, f'{name}.png'), osp.join(maps_dir, f'{name}.png')))
        for name, paths in zip(names, pairs)
    ]
    sources = [osp.abspath(p) for p in settings.inputs] + ([osp.abspath(settings.mse)] if settings.mse else [])
    job_settings = {
        'sources': sources,
        'fallback': osp.abspath(settings.mse) if settings.mse else None,
        'scores': 'desra' if settings.mse else 'localizer',
        'localizer_config': osp.abspath(settings.localizer_config) if localizer else None,
        'localizer_checkpoint': osp.abspath(settings.localizer_checkpoint) if localizer else None,
        'region_sigma': cfg.region_sigma,
        'margin': cfg.margin,
        'feather_sigma': cfg.feather_sigma,
        'artifact_threshold': cfg.artifact_threshold,
        'tie_margin': cfg.tie_margin,
    }
    hashed = {'localizer_config': settings.localizer_config,
              'localizer_checkpoint': settings.localizer_checkpoint} if localizer else {}
    return run_job(
        FolderJob(
            command='fuse',
            out_dir=settings.out,
            input_dirs=inputs,
            settings=job_settings,
            items=items,
            process=process,
            weights=hashed,
            failures=failures),
        overwrite=settings.overwrite,
        progress=settings.progress)
