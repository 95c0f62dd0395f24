"""Reading and writing images and masks, with one stated conversion rule for every caller.

Images are handled as BasicSR and OpenCV do: ``HxWx3`` ``uint8`` arrays in **BGR** order.

Conversion rule applied by :func:`read_image`:
    * grayscale (``HxW`` or ``HxWx1``) is replicated to three channels;
    * RGBA / BGRA drops the alpha channel (SR outputs carry no meaningful alpha);
    * 16-bit images are scaled to 8 bit with ``round(x / 257)`` (65535 -> 255);
    * any other dtype or channel count is rejected.

Masks (:func:`read_mask`): a single channel, or a colour file whose colour channels all agree (grey or white
drawn in colour, alpha fully opaque); pixel values > 127 (> 127 * 257 for 16 bits) are artifact (True). A colour
mask whose channels differ (a red mask) is an error unless the channel is named (``mask_channel``, RGBA order:
0 red, 1 green, 2 blue, 3 alpha), because reading one channel of it silently gives a wrong mask.

Files are decoded from their bytes, and a file that stops before the end its format requires is an error: JPEG
without the end-of-image marker after its last scan, PNG without its ``IEND`` chunk, WebP or BMP shorter than
their headers say. (libjpeg only warns and fills the missing part with grey; TIFF truncation makes libtiff fail.)
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

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


def stem_index(folder: str) -> Dict[str, str]:
    """Map file stem -> path for the images directly inside ``folder``.

    Args:
        folder (str): Folder to list.

    Returns:
        dict[str, str]: Stem to path.

    Raises:
        DesraInputError: If ``folder`` is not a directory, or two of its images share a stem (ambiguous pairing).
    """
    index: Dict[str, str] = {}
    for name in list_images(folder):
        key = stem(name)
        if key in index:
            raise DesraInputError(f'{osp.join(folder, name)}: ambiguous, {index[key]} has the same stem')
        index[key] = osp.join(folder, name)
    return index


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
    by_folder = [stem_index(folder) for folder in folders]
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


def _truncation(content: bytes) -> Optional[str]:
    """Why an encoded image ends too early, or None when its format's end marker or declared size is there."""
    if content[:2] == b'\xff\xd8':  # JPEG: the end-of-image marker must follow the last start-of-scan
        last_scan = content.rfind(b'\xff\xda')
        if last_scan < 0 or content.find(b'\xff\xd9', last_scan) < 0:
            return 'truncated JPEG (no end-of-image marker after the last scan)'
    elif content[:8] == b'\x89PNG\r\n\x1a\n':
        if content.rfind(b'IEND') < 0:
            return 'truncated PNG (no IEND chunk)'
    elif content[:4] == b'RIFF' and content[8:12] == b'WEBP':
        if len(content) < int.from_bytes(content[4:8], 'little') + 8:
            return 'truncated WebP (shorter than its RIFF header says)'
    elif content[:2] == b'BM' and len(content) >= 6:
        declared = int.from_bytes(content[2:6], 'little')
        if 0 < len(content) < declared:
            return f'truncated BMP ({len(content)} of {declared} bytes)'
    return None


def _decode(content: bytes, path: str, what: str) -> np.ndarray:
    """Decode bytes with OpenCV (``IMREAD_UNCHANGED``) after checking the data is complete."""
    if not content:
        raise DesraInputError(f'{path}: empty file')
    reason = _truncation(content)
    if reason:
        raise DesraInputError(f'{path}: {reason}')
    img = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise DesraInputError(f'{path}: cannot decode {what} (unreadable or corrupt file)')
    return img


def _read_bytes(path: str) -> bytes:
    if not osp.isfile(path):
        raise DesraInputError(f'{path}: file not found')
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as err:
        raise DesraInputError(f'{path}: cannot read ({err.strerror})') from err


def decode_image(content: bytes, path: str) -> np.ndarray:
    """Decode image bytes to ``HxWx3`` uint8 BGR with the module's conversion rule.

    Args:
        content (bytes): Encoded image (a file's content or an lmdb value).
        path (str): File (or lmdb key) named in errors.

    Returns:
        np.ndarray: The image.

    Raises:
        DesraInputError: If the data is empty, truncated, corrupt or of an unsupported kind.
    """
    return to_bgr_uint8(_decode(content, path, 'image'), path)


def read_image(path: str) -> np.ndarray:
    """Read an image file as ``HxWx3`` uint8 BGR, following the module's conversion rule.

    Args:
        path (str): Image file.

    Returns:
        np.ndarray: The image.

    Raises:
        DesraInputError: If the file is missing, unreadable, truncated or corrupt, or of an unsupported kind.
    """
    return decode_image(_read_bytes(path), path)


#: ``mask_channel`` values: channel index in RGBA order.
MASK_CHANNELS = {0: 'red', 1: 'green', 2: 'blue', 3: 'alpha'}


def _mask_plane(raw: np.ndarray, path: str, channel: Optional[int], channel_option: str) -> np.ndarray:
    """The one plane of a decoded mask that holds the mask (see the module docstring)."""
    if raw.ndim == 2 or (raw.ndim == 3 and raw.shape[2] == 1):
        return raw.reshape(raw.shape[:2])
    if raw.ndim != 3 or raw.shape[2] not in (3, 4):
        raise DesraInputError(f'{path}: unsupported mask shape {raw.shape}')
    if channel is not None:
        if channel not in MASK_CHANNELS or channel >= raw.shape[2]:
            raise DesraInputError(f'{path}: mask channel {channel} does not exist (the file has {raw.shape[2]})')
        return raw[:, :, (2, 1, 0, 3)[channel]]  # OpenCV decodes BGR(A)
    colour = raw[:, :, :3]
    if not ((colour[:, :, 0] == colour[:, :, 1]).all() and (colour[:, :, 1] == colour[:, :, 2]).all()):
        raise DesraInputError(f'{path}: colour mask whose red, green and blue channels differ; save masks in grey '
                              f'(0 and 255), or name the channel that holds the mask ({channel_option})')
    top = np.iinfo(raw.dtype).max if raw.dtype.kind == 'u' else None
    if raw.shape[2] == 4 and not (raw[:, :, 3] == top).all():
        raise DesraInputError(f'{path}: mask with transparency; name the channel that holds the mask '
                              f'({channel_option} 3 for the alpha channel)')
    return colour[:, :, 0]


def decode_mask(content: bytes,
                path: str,
                channel: Optional[int] = None,
                channel_option: str = '--mask-channel') -> Tuple[np.ndarray, bool]:
    """Decode mask bytes: > 127 is artifact (> 127 * 257 for 16-bit files).

    Args:
        content (bytes): Encoded mask image.
        path (str): File (or lmdb key) named in errors.
        channel (int | None): Channel holding the mask, RGBA order (0 red, 1 green, 2 blue, 3 alpha); None accepts
            single-channel files and colour files whose colour channels agree.
        channel_option (str): How the user names the channel (the command-line option or the option-file key),
            suggested by the errors about colour masks.

    Returns:
        tuple: ``(mask, binary)``: ``HxW`` bool mask, and whether the plane held only 0 and the maximum value.

    Raises:
        DesraInputError: If the data is empty, truncated or corrupt, or a colour mask is ambiguous.
    """
    plane = _mask_plane(_decode(content, path, 'mask'), path, channel, channel_option)
    if plane.dtype not in (np.uint8, np.uint16):
        raise DesraInputError(f'{path}: unsupported mask pixel type {plane.dtype} (expected 8- or 16-bit)')
    top = np.iinfo(plane.dtype).max
    binary = bool(np.isin(plane, (0, top)).all())
    return plane > (127 * 257 if plane.dtype == np.uint16 else 127), binary


def load_mask(path: str, channel: Optional[int] = None) -> Tuple[np.ndarray, bool]:
    """Read a mask file and whether it was binary (see :func:`decode_mask`).

    Args:
        path (str): Mask image file.
        channel (int | None): See :func:`decode_mask`.

    Returns:
        tuple: ``(mask, binary)``.

    Raises:
        DesraInputError: If the file is missing, unreadable, truncated or corrupt, or an ambiguous colour mask.
    """
    return decode_mask(_read_bytes(path), path, channel)


def read_mask(path: str, channel: Optional[int] = None) -> np.ndarray:
    """Read a binary mask (see :func:`decode_mask`).

    Args:
        path (str): Mask image file.
        channel (int | None): See :func:`decode_mask`.

    Returns:
        np.ndarray: ``HxW`` bool array.

    Raises:
        DesraInputError: If the file is missing, unreadable, truncated or corrupt, or an ambiguous colour mask.
    """
    return load_mask(path, channel)[0]


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
