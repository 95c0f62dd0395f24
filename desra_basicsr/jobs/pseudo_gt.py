"""Pseudo-GT job: ``M * y_mse + (1 - M) * y_gan`` (paper eq. 10) for folders paired by file stem.

For users who prefer precomputed training data (``PseudoGTPairedDataset`` with ``dataroot_gt``) over merging on
the fly. Writes ``OUT/<stem>.png`` (lossless) and ``OUT/summary.json`` with each image's ``artifact_fraction`` (mean
merge weight), ``height`` and ``width``. Masks are read with :func:`desra_basicsr.image_io.load_mask`; a mask with
values other than 0 and the maximum is thresholded at 127 and named in a notice (its record says
``mask_thresholded: true``).

Example::

    from desra_basicsr.jobs.pseudo_gt import PseudoGTSettings, run
    run(PseudoGTSettings(mse='sr/mse', gan='sr/gan', masks='masks', out='pseudo_gt'))
"""
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional

from desra_basicsr.errors import settings_phase
from desra_basicsr.folders import check_out_dir, pair_inputs
from desra_basicsr.jobs.core import FolderJob, JobItem, JobResult, notice, run_job


@dataclass
class PseudoGTSettings:
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
    mse: str
    gan: str
    masks: str
    out: str
    dilate: float = 0
    feather: float = 0
    mask_channel: Optional[int] = None
    overwrite: bool = False
    progress: bool = True


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

    from desra_basicsr.data.artifact_mask_transform import ArtifactMaskTransform
    from desra_basicsr.errors import DesraInputError
    from desra_basicsr.image_io import MASK_CHANNELS, load_mask, read_image, stem, write_image

    with settings_phase():
        if settings.mask_channel is not None and settings.mask_channel not in MASK_CHANNELS:
            raise DesraInputError(f'--mask-channel {settings.mask_channel}: choose from {sorted(MASK_CHANNELS)}')
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
        record = {'artifact_fraction': round(float(weight.mean()), 6), 'height': y_gan.shape[0],
                  'width': y_gan.shape[1]}
        if not binary:
            thresholded.append(mask_path)
            record['mask_thresholded'] = True
        return record

    items = [JobItem(stem(gan), (mse, gan, mask), (osp.join(settings.out, f'{stem(gan)}.png'), ))
             for mse, gan, mask in triples]
    job_settings = {
        'mse': osp.abspath(settings.mse),
        'gan': osp.abspath(settings.gan),
        'masks': osp.abspath(settings.masks),
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
        notice(f'{len(thresholded)} mask(s) are not binary (values other than 0 and 255) and were thresholded at '
               f'127, e.g. {thresholded[0]}')
    return result
