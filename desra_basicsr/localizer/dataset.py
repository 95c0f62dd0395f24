"""The localiser's training data: each source of (image, artifact mask) pairs, or of clean images, as an mmseg dataset.

Images and masks are paired by file stem (:func:`desra_basicsr.image_io.pair_by_stem`; extensions may differ).
Masks follow the package's one mask rule (:func:`desra_basicsr.image_io.read_mask`: single-channel, or colour with
equal channels; 0/255 and 0/1 masks are binary, others are thresholded at 127 with a notice): the label map is 1
where the mask is artifact, else 0, so mmseg's ignore value 255 only ever marks padding. Every pair is checked
before training starts (missing partners, sizes, unreadable files), with an error naming the file.

A source of *clean* images (no mask folder: images known to hold no artifact, such as the DeSRA pseudo-GT of the
same GAN-SR outputs, where the artifact regions hold MSE-SR pixels) is trained on with all-clean label maps
(:class:`LoadArtifactMask`). Next to the GAN-SR image of the same photo they show the model the same content with
and without the painted texture, so that it learns the texture rather than where a generator tends to paint it.
Training concatenates the sources (mmengine's ``ConcatDataset``) and draws each with its weight
(:class:`desra_basicsr.localizer.sampler.WeightedSourceSampler`).
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS, TRANSFORMS

from desra_basicsr.errors import DesraInputError
from desra_basicsr.image_io import list_images, pair_by_stem, read_image, read_mask, stem
from desra_basicsr.localizer.classes import CLASSES, PALETTE

#: Upper bound of the default artifact-class weight (:func:`balanced_artifact_weight`).
MAX_BALANCED_ARTIFACT_WEIGHT = 10.0


def read_label_map(path: str, channel: Optional[int] = None) -> np.ndarray:
    """A training mask as a label map (see the module docstring).

    Args:
        path (str): Mask file.
        channel (int | None): Channel of colour masks that holds the mask (RGBA order,
            :func:`desra_basicsr.image_io.read_mask`); None: single-channel masks or colour ones with equal channels.

    Returns:
        np.ndarray: ``HxW`` uint8, 1 artifact, 0 clean.

    Raises:
        DesraInputError: If the file cannot be read or breaks the mask rule.
    """
    return read_mask(path, channel).astype(np.uint8)


def list_artifact_pairs(img_dir: str,
                        mask_dir: str,
                        names: Optional[Sequence[str]] = None,
                        mask_channel: Optional[int] = None) -> List[Tuple[str, str]]:
    """Validated (image, mask) pairs of two folders.

    Args:
        img_dir (str): Folder of images with artifacts (GAN-SR outputs, synthetic artifacts).
        mask_dir (str): Folder of masks with the same stems.
        names (Sequence[str] | None): Only these stems (e.g. the finished items of a synthetic-artifact folder);
            None: every image.
        mask_channel (int | None): Channel of colour masks that holds the mask (see :func:`read_label_map`).

    Returns:
        list[tuple[str, str]]: ``(image path, mask path)`` per stem, sorted.

    Raises:
        DesraInputError: A folder is missing or empty, a file has no partner, cannot be read, or a mask breaks the
            mask rule or differs in size from its image.
    """
    pairs, missing = pair_by_stem([img_dir, mask_dir])
    if names is not None:
        wanted = set(names)
        pairs = [pair for pair in pairs if stem(pair[0]) in wanted]
        missing = {name: folders for name, folders in missing.items() if name in wanted}
        missing.update({name: (img_dir, mask_dir) for name in wanted - {stem(p[0]) for p in pairs} - set(missing)})
    if missing:
        name, folders = min(missing.items())
        raise DesraInputError(f'{name}: no partner file in {", ".join(folders)} (images and masks are paired by '
                              f'file stem; {len(missing)} stem(s) unpaired)')
    if not pairs:
        raise DesraInputError(f'{img_dir}: no images to train on (with masks in {mask_dir})')
    for img_path, mask_path in pairs:
        img, labels = read_image(img_path), read_label_map(mask_path, mask_channel)
        if labels.shape != img.shape[:2]:
            raise DesraInputError(f'{mask_path}: size {labels.shape[1]}x{labels.shape[0]} differs from its image '
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
        raise DesraInputError(f'{clean_dir}: the folder of clean images is not a directory')
    paths = [osp.join(clean_dir, name) for name in list_images(clean_dir)]
    if not paths:
        raise DesraInputError(f'{clean_dir}: no images in the folder of clean images')
    for path in paths:
        read_image(path)
    return paths


def artifact_fraction(mask_paths: Sequence[str], mask_channel: Optional[int] = None) -> float:
    """The share of artifact pixels among the pixels of some masks.

    Args:
        mask_paths (Sequence[str]): The masks.
        mask_channel (int | None): Channel of colour masks that holds the mask (see :func:`read_label_map`).

    Returns:
        float: Artifact pixels / all pixels, in [0, 1] (0 without any pixel).

    Raises:
        DesraInputError: If a file cannot be read or a mask breaks the mask rule.
    """
    artifact, total = 0, 0
    for path in mask_paths:
        labels = read_label_map(path, mask_channel)
        artifact += int(np.count_nonzero(labels))
        total += labels.size
    return artifact / total if total else 0.0


def balanced_artifact_weight(fraction: float) -> float:
    """Cross-entropy weight of the artifact class that softens its imbalance against the clean class.

    The square root of the ratio of clean to artifact pixels, ``sqrt((1 - fraction) / fraction)``, clipped to
    ``[1, MAX_BALANCED_ARTIFACT_WEIGHT]`` (1 when there is no artifact or more artifact than clean pixels);
    docs/localizer-fusion.md, "Class balance", compares it with the full ratio.

    Args:
        fraction (float): The share of artifact pixels among the pixels training sees (:func:`artifact_fraction`,
            or the mean of the sources' fractions weighted by how often each is drawn).

    Returns:
        float: The weight, rounded to 3 decimals.
    """
    if fraction <= 0:
        return 1.0
    return round(float(np.clip(np.sqrt((1 - fraction) / fraction), 1.0, MAX_BALANCED_ARTIFACT_WEIGHT)), 3)


@TRANSFORMS.register_module()
class LoadArtifactMask(BaseTransform):
    """The label map of a sample (:func:`read_label_map` of ``seg_map_path`` and ``mask_channel``), or an all-clean
    one (zeros of the image size) for a sample without a mask file (the clean images). Must follow
    ``LoadImageFromFile``."""

    def transform(self, results: dict) -> dict:
        """Add ``gt_seg_map`` and list it in ``seg_fields``.

        Args:
            results (dict): The sample, with ``img_shape``, ``seg_map_path`` and ``mask_channel``.

        Returns:
            dict: The sample.
        """
        path = results.get('seg_map_path')
        labels = np.zeros(results['img_shape'][:2], np.uint8) if path is None else read_label_map(
            path, results.get('mask_channel'))
        results['gt_seg_map'] = labels
        results.setdefault('seg_fields', []).append('gt_seg_map')
        return results


@DATASETS.register_module()
class DesraArtifactMaskDataset(BaseSegDataset):
    """One training source for mmseg: (image, artifact mask) pairs, or clean images; labels 0 clean, 1 artifact.

    Args:
        img_dir (str): Folder of images (with artifacts, or clean ones when ``mask_dir`` is None).
        mask_dir (str | None): Folder of masks (0/255 or 0/1) with the same stems; None: every image is all clean
            (load the samples with :class:`LoadArtifactMask`).
        names (Sequence[str] | None): Only the image pairs of these stems (e.g. the finished items of a
            synthetic-artifact folder); None: every image.
        mask_channel (int | None): Channel of colour masks that holds the mask (see :func:`read_label_map`).
        **kwargs: Other :class:`mmseg.datasets.BaseSegDataset` arguments (``pipeline``, ``test_mode``, ...).
    """
    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self,
                 img_dir: str,
                 mask_dir: Optional[str] = None,
                 names: Optional[Sequence[str]] = None,
                 mask_channel: Optional[int] = None,
                 **kwargs) -> None:
        self.img_dir, self.mask_dir, self.names, self.mask_channel = img_dir, mask_dir, names, mask_channel
        super().__init__(data_prefix=dict(img_path=img_dir, seg_map_path=mask_dir or ''), **kwargs)

    def load_data_list(self) -> List[dict]:
        """One entry per validated pair (see :func:`list_artifact_pairs`) or clean image
        (:func:`list_clean_images`).

        Returns:
            list[dict]: mmseg data infos.
        """
        if self.mask_dir:
            pairs = list_artifact_pairs(self.img_dir, self.mask_dir, self.names, self.mask_channel)
        else:
            pairs = [(path, None) for path in list_clean_images(self.img_dir)]
        return [
            dict(
                img_path=osp.abspath(img_path),
                seg_map_path=None if mask_path is None else osp.abspath(mask_path),
                mask_channel=self.mask_channel,
                reduce_zero_label=False,
                seg_fields=[]) for img_path, mask_path in pairs
        ]
