"""The artifact zoo's samples, as the localiser and the restorer read them.

A zoo sample is an image with artifacts, the mask of its artifacts and the clean image it should have been, with a
class name. Two sources make them:

* **Synthetic artifacts** (``desra zoo synth --out ROOT``): ``ROOT/img/NAME.png`` and its exact mask
  ``ROOT/mask/NAME.png`` for every finished item ``NAME`` of ``ROOT/summary.json``, whose record holds the
  ``class`` painted and the ``target`` (the clean HR photo it was painted on).
* **Generators** (GAN-SR or other models): a folder of outputs, a folder of their DeSRA-det masks and the folder of
  HR photos they should match, paired by file stem; the class is the generator's (family) name.

Example::

    from desra_basicsr.jobs.zoo_samples import generator_samples, synthetic_samples
    samples = synthetic_samples('zoo/synth') + generator_samples('zoo/gan/sr', 'zoo/gan/masks', 'hr', 'realesrgan')
"""
import os.path as osp
from dataclasses import dataclass
from typing import List

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.folders import pair_folders
from desra_basicsr.jobs.core import STATUS_DONE, SUMMARY_NAME, load_summary

#: The command name recorded in the summary of a synthetic-artifact folder.
SYNTH_COMMAND = 'zoo synth'
#: Sub-folders of a synthetic-artifact folder: the images with artifacts and their exact masks.
SYNTH_IMAGE_DIR = 'img'
SYNTH_MASK_DIR = 'mask'


@dataclass(frozen=True)
class ZooSample:
    """One image with artifacts, its artifact mask, its clean target and its class.

    Attributes:
        image (str): The image with artifacts.
        mask (str): Its binary artifact mask (exact for synthetic artifacts, DeSRA-det's for generators).
        target (str): The clean image (the HR photo).
        cls (str): The artifact class (a synthetic class name or a generator's name).
    """
    image: str
    mask: str
    target: str
    cls: str


def synthetic_image_path(root: str, name: str) -> str:
    """Where a synthetic-artifact folder keeps the image of item ``name``."""
    return osp.join(root, SYNTH_IMAGE_DIR, f'{name}.png')


def synthetic_mask_path(root: str, name: str) -> str:
    """Where a synthetic-artifact folder keeps the exact mask of item ``name``."""
    return osp.join(root, SYNTH_MASK_DIR, f'{name}.png')


def synthetic_samples(root: str) -> List[ZooSample]:
    """The finished samples of a synthetic-artifact folder (``desra zoo synth --out ROOT``), sorted by name.

    Args:
        root (str): The folder.

    Returns:
        list[ZooSample]: One sample per finished item.

    Raises:
        DesraSettingsError: If the folder holds no summary of ``desra zoo synth`` or no finished sample.
    """
    summary = load_summary(osp.join(root, SUMMARY_NAME))
    if summary is None or summary['meta'].get('command') != SYNTH_COMMAND:
        raise DesraSettingsError(f'{root}: not a folder of `desra {SYNTH_COMMAND}` (no {SUMMARY_NAME} of that '
                                 'command); make it with `desra zoo synth --hr DIR --out ' + root + '`')
    samples = [
        ZooSample(synthetic_image_path(root, name), synthetic_mask_path(root, name), record['target'], record['class'])
        for name, record in sorted(summary['items'].items()) if record.get('status') == STATUS_DONE
    ]
    if not samples:
        raise DesraSettingsError(f'{root}: no finished sample in {SUMMARY_NAME}; run `desra zoo synth` on it again')
    return samples


def generator_samples(output_dir: str, mask_dir: str, hr_dir: str, cls: str) -> List[ZooSample]:
    """A generator's outputs with their DeSRA-det masks and HR photos, paired by file stem.

    Photos of ``hr_dir`` without an output (or without a mask) are left out: a generator may have run on a subset.

    Args:
        output_dir (str): The generator's outputs.
        mask_dir (str): Their DeSRA-det masks (``desra detect --out``).
        hr_dir (str): The HR photos.
        cls (str): The generator's class name.

    Returns:
        list[ZooSample]: One sample per stem present in all three folders, sorted by stem.

    Raises:
        DesraSettingsError: If a folder is missing or empty, or no stem is present in all three.
    """
    pairs, _ = pair_folders({'output': output_dir, 'mask': mask_dir, 'hr': hr_dir})
    if not pairs:
        raise DesraSettingsError(f'{output_dir}, {mask_dir}, {hr_dir}: no file stem present in all three folders')
    return [ZooSample(image, mask, hr, cls) for image, mask, hr in pairs]
