"""The localiser's training data: (GAN-SR image, DeSRA-det mask) pairs as an mmseg dataset.

Images and masks are paired by file stem (:func:`desra_basicsr.image_io.pair_by_stem`; extensions may differ).
Masks are those ``desra detect`` writes (0/255, 255 = artifact), read with the one mask rule of
:func:`desra_basicsr.image_io.read_mask` (0/1 masks are binary too; others are thresholded with a notice) by
:class:`LoadArtifactMask`, which gives mmseg labels 0 and 1, so mmseg's ignore value 255 only ever marks padding.
Every pair is checked before training starts (missing partners, sizes, unreadable files), with an error naming the
file.

Optional *clean* images (``clean_dir``: images known to hold no artifact, such as the DeSRA pseudo-GT of the same
GAN-SR outputs, where the artifact regions hold MSE-SR pixels) are added with an all-clean label map
(:class:`LoadArtifactMask`). Next to the GAN-SR image of the same photo they show the model the same content with
and without the painted texture, so that it learns the texture rather than where a generator tends to paint it.
"""
import os.path as osp
from typing import List, Optional, Tuple

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import DATASETS, TRANSFORMS

from desra_basicsr.errors import DesraInputError
from desra_basicsr.image_io import list_images, pair_by_stem, read_image, read_mask
from desra_basicsr.localizer.config import CLASSES, PALETTE


def list_artifact_pairs(img_dir: str, mask_dir: str) -> List[Tuple[str, str]]:
    """Validated (image, mask) pairs of two folders.

    Args:
        img_dir (str): Folder of GAN-SR images.
        mask_dir (str): Folder of masks with the same stems.

    Returns:
        list[tuple[str, str]]: ``(image path, mask path)`` per stem, sorted.

    Raises:
        DesraInputError: A folder is missing or empty, a file has no partner or cannot be read, or a mask differs
            in size from its image.
    """
    pairs, missing = pair_by_stem([img_dir, mask_dir])
    if missing:
        name, folders = min(missing.items())
        raise DesraInputError(f'{name}: no partner file in {", ".join(folders)} (images and masks are paired by '
                              f'file stem; {len(missing)} stem(s) unpaired)')
    if not pairs:
        raise DesraInputError(f'{img_dir}: no images to train on (with masks in {mask_dir})')
    for img_path, mask_path in pairs:
        img, mask = read_image(img_path), read_mask(mask_path)
        if mask.shape != img.shape[:2]:
            raise DesraInputError(f'{mask_path}: size {mask.shape[1]}x{mask.shape[0]} differs from its image '
                                  f'{img_path} ({img.shape[1]}x{img.shape[0]})')
    return pairs


def list_clean_images(clean_dir: str) -> List[str]:
    """Validated images of a folder of artifact-free images.

    Args:
        clean_dir (str): The folder.

    Returns:
        list[str]: Image paths, sorted.

    Raises:
        DesraInputError: The folder is missing or holds no image, or an image cannot be decoded.
    """
    if not osp.isdir(clean_dir):
        raise DesraInputError(f'{clean_dir}: --clean is not a directory')
    paths = [osp.join(clean_dir, name) for name in list_images(clean_dir)]
    if not paths:
        raise DesraInputError(f'{clean_dir}: no images in the --clean folder')
    for path in paths:
        read_image(path)
    return paths


@TRANSFORMS.register_module()
class LoadArtifactMask(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` for artifact masks: labels 0 / 1 from :func:`desra_basicsr.image_io.read_mask`,
    and an all-clean label map (zeros of the image size) for samples without a mask file (``seg_map_path`` None:
    the clean images). Must follow ``LoadImageFromFile``."""

    def _load_seg_map(self, results: dict) -> None:
        path = results.get('seg_map_path')
        results['gt_seg_map'] = (np.zeros(results['img_shape'][:2], np.uint8)
                                 if path is None else read_mask(path).astype(np.uint8))
        results['seg_fields'].append('gt_seg_map')


@DATASETS.register_module()
class DesraArtifactMaskDataset(BaseSegDataset):
    """(GAN-SR image, artifact mask) pairs for mmseg training, and optional clean images; labels 0 clean, 1 artifact.

    Args:
        img_dir (str): Folder of GAN-SR images.
        mask_dir (str): Folder of masks (0/255 or 0/1) with the same stems.
        clean_dir (str | None): Folder of artifact-free images (all clean; load them with :class:`LoadArtifactMask`).
        **kwargs: Other :class:`mmseg.datasets.BaseSegDataset` arguments (``pipeline``, ``test_mode``, ...).
    """
    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, img_dir: str, mask_dir: str, clean_dir: Optional[str] = None, **kwargs) -> None:
        self.clean_dir = clean_dir
        super().__init__(data_prefix=dict(img_path=img_dir, seg_map_path=mask_dir), **kwargs)

    def load_data_list(self) -> List[dict]:
        """One entry per validated pair (see :func:`list_artifact_pairs`), then one per clean image.

        Returns:
            list[dict]: mmseg data infos.
        """
        pairs = list_artifact_pairs(self.data_prefix['img_path'], self.data_prefix['seg_map_path'])
        if self.clean_dir:
            pairs += [(path, None) for path in list_clean_images(self.clean_dir)]
        return [
            dict(
                img_path=osp.abspath(img_path),
                seg_map_path=None if mask_path is None else osp.abspath(mask_path),
                label_map=None,
                reduce_zero_label=False,
                seg_fields=[]) for img_path, mask_path in pairs
        ]
