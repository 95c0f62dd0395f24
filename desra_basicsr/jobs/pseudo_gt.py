"""Pseudo-GT job: ``M * y_mse + (1 - M) * y_gan`` (paper eq. 10) for folders paired by file stem.

For users who prefer precomputed training data (``PseudoGTPairedDataset`` with ``dataroot_gt``) over merging on
the fly. Writes ``OUT/<stem>.png`` (lossless) and ``OUT/summary.json`` with each image's ``artifact_fraction`` (mean
merge weight), ``height`` and ``width`` (:class:`PseudoGTRecord`). Masks are read with the one mask rule
(:func:`desra_basicsr.image_io.load_mask`: 0/255 and 0/1 masks are binary; others are thresholded at 127 and named
in a notice, their record saying ``mask_thresholded: true``).

Example::

    from desra_basicsr.jobs.pseudo_gt import PseudoGTSettings, run
    run(PseudoGTSettings(mse='sr/mse', gan='sr/gan', masks='masks', out='pseudo_gt'))
"""
import os.path as osp
from dataclasses import dataclass
from typing import List, Literal, Optional

from desra_basicsr.constants import MASK_CHANNEL_CHOICES
from desra_basicsr.errors import settings_phase
from desra_basicsr.folders import check_out_dir, pair_inputs
from desra_basicsr.jobs.core import FolderJob, JobItem, JobResult, run_job
from desra_basicsr.jobs.records import ItemRecord
from desra_basicsr.settings import Settings, setting
from desra_basicsr.utils import notice

#: Largest ``dilate`` / ``feather`` (pixels): a radius that already spans a 4K image.
MAX_RADIUS = 4096.0


@dataclass(frozen=True)
class PseudoGTSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        mse (str): Folder of MSE-SR outputs.
        gan (str): Folder of GAN-SR outputs.
        masks (str): Folder of artifact masks (e.g. written by the detection job).
        out (str): Output folder.
        dilate (float): Grow masks by this many pixels.
        feather (float): Linear fall-off over this many pixels outside the mask.
        mask_channel (int | None): Channel of colour masks holding the mask (RGBA order); None: single-channel or
            grey masks only (see :func:`desra_basicsr.image_io.decode_mask`).
        overwrite (bool): Recompute every output even when an earlier run with other settings wrote them.
        progress (bool): Show a progress bar.
    """
    mse: str = setting(kind='path')
    gan: str = setting(kind='path')
    masks: str = setting(kind='path')
    out: str = setting(kind='path')
    dilate: float = setting(0.0, lo=0, hi=MAX_RADIUS)
    feather: float = setting(0.0, lo=0, hi=MAX_RADIUS)
    mask_channel: Optional[Literal[MASK_CHANNEL_CHOICES]] = None
    overwrite: bool = False
    progress: bool = True


@dataclass(frozen=True)
class PseudoGTRecord(ItemRecord):
    """``summary.json`` record of one pseudo-GT image.

    Attributes:
        artifact_fraction (float): Mean merge weight.
        height (int): Image height.
        width (int): Image width.
        mask_thresholded (bool | None): True when the mask was not binary and was thresholded at 127.
    """
    artifact_fraction: float
    height: int
    width: int
    mask_thresholded: Optional[bool] = None


def run(settings: PseudoGTSettings) -> JobResult:
    """Write the pseudo-GT of every image triple.

    Args:
        settings (PseudoGTSettings): Inputs, merge options and output folder.

    Returns:
        JobResult: Counts of this run; ``items`` holds each image's record.

    Raises:
        DesraSettingsError: For unusable settings, before any work.
    """
    inputs = {'mse': settings.mse, 'gan': settings.gan, 'masks': settings.masks}
    check_out_dir(settings.out, inputs)
    triples, failures = pair_inputs(inputs)

    from desra_basicsr.detection.pseudo_gt import ArtifactMaskTransform
    from desra_basicsr.errors import DesraInputError
    from desra_basicsr.image_io import load_mask, read_image, stem, write_image

    with settings_phase():
        transform = ArtifactMaskTransform(dilate=settings.dilate, feather=settings.feather)
    thresholded: List[str] = []

    def process(item: JobItem) -> dict:
        mse_path, gan_path, mask_path = item.inputs
        y_mse, y_gan = read_image(mse_path), read_image(gan_path)
        mask, binary = load_mask(mask_path, settings.mask_channel)
        if y_mse.shape != y_gan.shape:
            raise DesraInputError(f'{gan_path}: size {y_gan.shape[1]}x{y_gan.shape[0]} differs from its MSE-SR '
                                  f'partner {mse_path} ({y_mse.shape[1]}x{y_mse.shape[0]})')
        if mask.shape != y_gan.shape[:2]:
            raise DesraInputError(f'{mask_path}: mask size {mask.shape[1]}x{mask.shape[0]} differs from the image '
                                  f'size {y_gan.shape[1]}x{y_gan.shape[0]} of {gan_path}')
        weight = transform.weight(mask)
        write_image(item.outputs[0], transform.merge(y_mse, y_gan, weight))
        if not binary:
            thresholded.append(mask_path)
        return PseudoGTRecord(round(float(weight.mean()), 6), int(y_gan.shape[0]), int(y_gan.shape[1]),
                              None if binary else True).fields()

    items = [JobItem(stem(gan), (mse, gan, mask), (osp.join(settings.out, f'{stem(gan)}.png'), ))
             for mse, gan, mask in triples]
    job_settings = {
        'mse': settings.mse,
        'gan': settings.gan,
        'masks': settings.masks,
        'dilate': settings.dilate,
        'feather': settings.feather,
        'mask_channel': settings.mask_channel,
    }
    result = run_job(
        FolderJob(command='pseudo-gt', out_dir=settings.out, input_dirs=inputs, settings=job_settings, items=items,
                  process=process, failures=failures),
        overwrite=settings.overwrite,
        progress=settings.progress)
    if thresholded:
        notice(f'{len(thresholded)} mask(s) are not binary (values other than 0/255 or 0/1) and were thresholded at '
               f'127, e.g. {thresholded[0]}')
    return result
