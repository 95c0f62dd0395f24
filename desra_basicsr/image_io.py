"""Reading and writing images and masks, with one stated conversion rule for every caller.

Images are handled as BasicSR and OpenCV do: ``HxWx3`` ``uint8`` arrays in **BGR** order.

Conversion rule applied by :func:`read_image`:
    * grayscale (``HxW`` or ``HxWx1``) is replicated to three channels;
    * RGBA / BGRA drops the alpha channel (SR outputs carry no meaningful alpha);
    * 16-bit images are scaled to 8 bit with ``round(x / 257)`` (65535 -> 255);
    * any other dtype or channel count is rejected.

Masks (:func:`read_mask`) are single-channel; pixel values > 127 are artifact (True).
"""
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from desra_basicsr.errors import DesraInputError
from desra_basicsr.utils import atomic_write_path

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def list_images(folder: str) -> List[str]:
    """List image files (by extension, case-insensitive) directly inside ``folder``, sorted by name.

    Args:
        folder (str): Folder to list.

    Returns:
        list[str]: File names (not paths).

    Raises:
        DesraInputError: If ``folder`` is not a directory.
    """
    if not osp.isdir(folder):
        raise DesraInputError(f'{folder}: not a directory')
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith('.'))


def stem(name: str) -> str:
    """File name without folder and extension."""
    return osp.splitext(osp.basename(name))[0]


def pair_by_stem(folders: Sequence[str]) -> Tuple[List[Tuple[str, ...]], Dict[str, List[str]]]:
    """Pair image files across folders by file stem (extension may differ).

    Args:
        folders (Sequence[str]): Folders whose images are paired, e.g. ``(mse_dir, gan_dir)``.

    Returns:
        tuple: ``(pairs, missing)``. ``pairs`` holds one tuple of full paths per stem present in every folder,
        sorted by stem. ``missing`` maps each stem lacking a partner to the folders it is missing from.

    Raises:
        DesraInputError: If a folder holds two images with the same stem (ambiguous pairing).
    """
    by_folder = []
    for folder in folders:
        index = {}
        for name in list_images(folder):
            key = stem(name)
            if key in index:
                raise DesraInputError(f'{osp.join(folder, name)}: ambiguous, {index[key]} has the same stem')
            index[key] = osp.join(folder, name)
        by_folder.append(index)
    stems = sorted(set().union(*[set(index) for index in by_folder]))
    pairs, missing = [], {}
    for key in stems:
        absent = [folder for folder, index in zip(folders, by_folder) if key not in index]
        if absent:
            missing[key] = absent
        else:
            pairs.append(tuple(index[key] for index in by_folder))
    return pairs, missing


def to_bgr_uint8(img: np.ndarray, path: str = '<array>') -> np.ndarray:
    """Apply the module's conversion rule to a decoded image.

    Args:
        img (np.ndarray): Image as decoded by ``cv2.imread(..., IMREAD_UNCHANGED)``.
        path (str): Name used in error messages.

    Returns:
        np.ndarray: ``HxWx3`` uint8 BGR image.

    Raises:
        DesraInputError: For unsupported dtypes or channel counts.
    """
    if img.dtype == np.uint16:
        img = np.round(img.astype(np.float32) / 257.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise DesraInputError(f'{path}: unsupported pixel type {img.dtype} (expected 8- or 16-bit)')
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim == 3 and img.shape[2] == 4:
        return np.ascontiguousarray(img[:, :, :3])
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    raise DesraInputError(f'{path}: unsupported image shape {img.shape} (expected gray, BGR or BGRA)')


def read_image(path: str) -> np.ndarray:
    """Read an image file as ``HxWx3`` uint8 BGR, following the module's conversion rule.

    Args:
        path (str): Image file.

    Returns:
        np.ndarray: The image.

    Raises:
        DesraInputError: If the file is missing, unreadable or corrupt, or of an unsupported kind.
    """
    if not osp.isfile(path):
        raise DesraInputError(f'{path}: file not found')
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise DesraInputError(f'{path}: cannot decode image (unreadable or corrupt file)')
    return to_bgr_uint8(img, path)


def read_mask(path: str) -> np.ndarray:
    """Read a binary mask: single channel (or the first channel of a colour file), > 127 is True.

    Args:
        path (str): Mask image file.

    Returns:
        np.ndarray: ``HxW`` bool array.

    Raises:
        DesraInputError: If the file is missing or cannot be decoded.
    """
    if not osp.isfile(path):
        raise DesraInputError(f'{path}: file not found')
    mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if mask is None or mask.size == 0:
        raise DesraInputError(f'{path}: cannot decode mask (unreadable or corrupt file)')
    if mask.ndim == 3:
        mask = mask[:, :, 0]
    if mask.dtype == np.uint16:
        return mask > 127 * 257
    return mask > 127


def write_image(path: str, img: np.ndarray) -> None:
    """Write an image atomically (temporary file, then rename); the format follows ``path``'s extension.

    Args:
        path (str): Destination file.
        img (np.ndarray): Image as accepted by ``cv2.imwrite`` (BGR uint8, or a single channel).

    Raises:
        OSError: If OpenCV cannot encode or write the file.
    """
    with atomic_write_path(path) as tmp:
        if not cv2.imwrite(tmp, img):
            raise OSError(f'{path}: OpenCV could not write the image')


def write_mask(path: str, mask: np.ndarray) -> None:
    """Write a boolean mask atomically as a uint8 0/255 image.

    Args:
        path (str): Destination file (PNG recommended).
        mask (np.ndarray): ``HxW`` array; non-zero is artifact.
    """
    write_image(path, np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8))
