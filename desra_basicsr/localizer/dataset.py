"""The localiser's training data: (GAN-SR image, DeSRA-det mask) pairs as an mmseg dataset.

Images and masks are paired by file stem (:func:`desra_basicsr.image_io.pair_by_stem`; extensions may differ).
Masks are those ``desra detect`` writes: single-channel 0/255 (255 = artifact); 0/1 masks are accepted too. Every
pair is checked before training starts (missing partners, sizes, mask values), with an error naming the file.
Mask value 255 is mapped to label 1 through mmseg's per-sample ``label_map`` (applied by ``LoadAnnotations``
before any padding, so mmseg's ignore value 255 only ever marks padding).

Optional *clean* images (``clean_dir``: images known to hold no artifact, such as the DeSRA pseudo-GT of the same
GAN-SR outputs, where the artifact regions hold MSE-SR pixels) are added with an all-clean label map
(:class:`LoadArtifactMask`). Next to the GAN-SR image of the same photo they show the model the same content with
and without the painted texture, so that it learns the texture rather than where a generator tends to paint it.
"""
import os.path as osp
from typing import List, Optional, Tuple

import cv2
import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import DATASETS, TRANSFORMS

from desra_basicsr.errors import DesraInputError
from desra_basicsr.image_io import list_images, pair_by_stem
from desra_basicsr.localizer.config import CLASSES, PALETTE

_MASK_VALUES = (0, 1, 255)


def list_artifact_pairs(img_dir: str, mask_dir: str) -> List[Tuple[str, str]]:
    """Validated (image, mask) pairs of two folders.

    Args:
        img_dir (str): Folder of GAN-SR images.
        mask_dir (str): Folder of masks with the same stems.

    Returns:
        list[tuple[str, str]]: ``(image path, mask path)`` per stem, sorted.

    Raises:
        DesraInputError: A folder is missing or empty, a file has no partner, cannot be read, or a mask differs in
            size from its image or holds values other than 0, 1 and 255.
    """
    pairs, missing = pair_by_stem([img_dir, mask_dir])
    if missing:
        name, folders = min(missing.items())
        raise DesraInputError(f'{name}: no partner file in {", ".join(folders)} (images and masks are paired by '
                              f'file stem; {len(missing)} stem(s) unpaired)')
    if not pairs:
        raise DesraInputError(f'{img_dir}: no images to train on (with masks in {mask_dir})')
    for img_path, mask_path in pairs:
        img = cv2.imread(img_path, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise DesraInputError(f'{img_path}: cannot decode image (unreadable or corrupt file)')
        mask = cv2.imread(mask_path, cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise DesraInputError(f'{mask_path}: cannot decode mask (unreadable or corrupt file)')
        if mask.ndim != 2:
            raise DesraInputError(f'{mask_path}: a mask must have one channel, got shape {mask.shape}')
        if mask.shape != img.shape[:2]:
            raise DesraInputError(f'{mask_path}: size {mask.shape[1]}x{mask.shape[0]} differs from its image '
                                  f'{img_path} ({img.shape[1]}x{img.shape[0]})')
        values = np.unique(mask)
        if not np.isin(values, _MASK_VALUES).all():
            raise DesraInputError(f'{mask_path}: not a binary 0/255 mask (values {values[:8].tolist()}...)')
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
        if cv2.imread(path, cv2.IMREAD_UNCHANGED) is None:
            raise DesraInputError(f'{path}: cannot decode image (unreadable or corrupt file)')
    return paths


@TRANSFORMS.register_module()
class LoadArtifactMask(LoadAnnotations):
    """mmseg's ``LoadAnnotations``, giving an all-clean label map (zeros of the image size) to samples without a
    mask file (``seg_map_path`` None: the clean images). Must follow ``LoadImageFromFile``."""

    def _load_seg_map(self, results: dict) -> None:
        if results.get('seg_map_path') is not None:
            super()._load_seg_map(results)
            return
        results['gt_seg_map'] = np.zeros(results['img_shape'][:2], np.uint8)
        results['seg_fields'].append('gt_seg_map')


@DATASETS.register_module()
class DesraArtifactMaskDataset(BaseSegDataset):
    """(GAN-SR image, artifact mask) pairs for mmseg training, and optional clean images; labels 0 clean, 1 artifact.

    Args:
        img_dir (str): Folder of GAN-SR images.
        mask_dir (str): Folder of 0/255 masks with the same stems.
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
                label_map={255: 1},
                reduce_zero_label=False,
                seg_fields=[]) for img_path, mask_path in pairs
        ]
