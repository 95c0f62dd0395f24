"""Rain job (``desra zoo rain``): synthetic rain streaks on clean photos, the inputs of the deraining test.

For every photo ``<stem>`` of ``hr`` it draws the photo's rain parameters around the run's
(:func:`desra_basicsr.zoo.rain.draw_params`) and writes

* ``OUT/img/<stem>.png``: the rainy photo (:func:`desra_basicsr.zoo.rain.rain_image`), same size as the photo;
* ``OUT/summary.json`` (:mod:`desra_basicsr.jobs.core`, command ``zoo rain``): the settings, and per item the
  photo's ``rain`` parameters, its ``target`` (absolute path of the clean photo), ``height`` and ``width``.

The rainy photo and its clean photo share a file name, so BasicSR's ``PairedImageDataset`` pairs ``OUT/img``
(``dataroot_lq``) with ``hr`` (``dataroot_gt``) as they are. Each photo draws from its own generator, seeded by
``seed`` and its name, so a resumed run or one under torchrun gives the same images as one uninterrupted run.

Example::

    from desra_basicsr.jobs.zoo_rain import ZooRainSettings, run
    run(ZooRainSettings(hr='hr', out='rain', angle=30, density=0.006))
"""
import os.path as osp
from dataclasses import dataclass

from desra_basicsr.folders import check_out_dir, pair_folders
from desra_basicsr.jobs.core import FolderJob, JobItem, JobResult, run_job
from desra_basicsr.settings import Settings, setting
from desra_basicsr.zoo import RainParams

#: The command name recorded in the summary of a rain folder.
RAIN_COMMAND = 'zoo rain'
#: Sub-folder of the rainy photos.
RAIN_IMAGE_DIR = 'img'
#: Largest seed.
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class ZooRainSettings(Settings):
    """Settings of :func:`run`; the rain controls are those of :class:`desra_basicsr.zoo.RainParams`, with its defaults.

    Attributes:
        hr (str): Folder of clean photos.
        out (str): Output folder (``img/``, ``summary.json``).
        angle (float): Tilt of the streaks from the vertical, degrees, in [-60, 60].
        length (float): Streak length, pixels, in [2, 200].
        density (float): Fraction of pixels that start a drop, in [1e-4, 0.05].
        blur (float): Gaussian blur of the drops, pixels, in [0, 5].
        intensity (float): Brightness of a streak's core, in [0.05, 1].
        seed (int): Seed of the whole run.
        overwrite (bool): Rain every photo again even when an earlier run with other settings wrote it.
        progress (bool): Show a progress bar.
    """
    hr: str = setting(kind='path')
    out: str = setting(kind='path')
    angle: float = setting(RainParams.angle, lo=-60, hi=60)
    length: float = setting(RainParams.length, lo=2, hi=200)
    density: float = setting(RainParams.density, lo=1e-4, hi=0.05)
    blur: float = setting(RainParams.blur, lo=0, hi=5)
    intensity: float = setting(RainParams.intensity, lo=0.05, hi=1)
    seed: int = setting(0, lo=0, hi=MAX_SEED)
    overwrite: bool = False
    progress: bool = True


def rain_image_path(root: str, name: str) -> str:
    """Where a rain folder keeps the rainy photo ``name``."""
    return osp.join(root, RAIN_IMAGE_DIR, f'{name}.png')


def run(settings: ZooRainSettings) -> JobResult:
    """Rain every photo of ``settings.hr`` and write the rainy photos.

    Args:
        settings (ZooRainSettings): Photos, rain controls and output folder.

    Returns:
        JobResult: Counts of this run; ``items`` holds each photo's record.

    Raises:
        DesraSettingsError: For unusable settings (a missing or empty ``hr`` folder included), before any work.
    """
    inputs = {'hr': settings.hr}
    check_out_dir(settings.out, inputs)
    photos, _ = pair_folders(inputs)

    from desra_basicsr.image_io import read_target_image, stem, write_image
    from desra_basicsr.zoo.rain import draw_params, rain_image
    from desra_basicsr.zoo.synthetic import rng_for

    base = RainParams(settings.angle, settings.length, settings.density, settings.blur, settings.intensity)
    items = [JobItem(stem(photo), (photo, ), (rain_image_path(settings.out, stem(photo)), )) for (photo, ) in photos]

    def process(item: JobItem) -> dict:
        image = read_target_image(item.inputs[0])
        rng = rng_for(settings.seed, item.name)
        params = draw_params(base, rng)
        write_image(item.outputs[0], rain_image(image, params, rng))
        return {
            'rain': params.as_dict(),
            'target': item.inputs[0],
            'height': int(image.shape[0]),
            'width': int(image.shape[1]),
        }

    job_settings = {'hr': settings.hr, 'rain': base.as_dict(), 'seed': settings.seed}
    return run_job(
        FolderJob(command=RAIN_COMMAND, out_dir=settings.out, input_dirs=inputs, settings=job_settings, items=items,
                  process=process),
        overwrite=settings.overwrite,
        progress=settings.progress)
