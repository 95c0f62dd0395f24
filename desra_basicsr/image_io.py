"""Reading and writing images and masks, with one stated conversion rule for every caller.

Images are handled as BasicSR and OpenCV do: ``HxWx3`` ``uint8`` arrays in **BGR** order.

Conversion rule applied by :func:`read_image`:
    * grayscale (``HxW`` or ``HxWx1``) is replicated to three channels;
    * RGBA / BGRA drops the alpha channel (SR outputs carry no meaningful alpha);
    * 16-bit images are scaled to 8 bit with ``round(x / 257)`` (65535 -> 255);
    * any other dtype or channel count is rejected.

Masks (:func:`decode_mask`, one rule for every command that reads masks): a single channel, or a colour file whose
colour channels all agree (grey or white drawn in colour, alpha fully opaque). Its values decide what is artifact:

    * only 0 and the maximum (255; 65535 for 16 bits): binary, the maximum is artifact;
    * only 0 and 1 (the labelme / numpy export): binary, 1 is artifact (an all-1 mask is all artifact);
    * anything else (anti-aliased edges, JPEG masks): values > 127 (> 127 * 257 for 16 bits) are artifact, and the
      mask is reported as not binary: :func:`read_mask` prints a notice naming the file (once per file), and
      :func:`load_mask` returns the flag for callers that summarise (``desra pseudo-gt``, fine-tuning data).

A colour mask whose channels differ (a red mask) is an error unless the channel is named (``mask_channel``, RGBA
order: 0 red, 1 green, 2 blue, 3 alpha), because reading one channel of it silently gives a wrong mask.

Files are decoded from their bytes, and a file that stops before the end its format requires is an error: JPEG
without the end-of-image marker after its last scan, PNG without its ``IEND`` chunk, WebP or BMP shorter than
their headers say. (libjpeg only warns and fills the missing part with grey; TIFF truncation makes libtiff fail.)

Size limit: before decoding, the width and height a PNG, JPEG, BMP, TIFF or WebP header declares are read
(:func:`image_dimensions`), and an image of more than :data:`MAX_IMAGE_PIXELS` pixels (2**28, e.g. 16384 x 16384),
or with a side that is not positive, is refused naming the file and its size, so that a crafted header cannot make
a reader allocate gigabytes. The environment variable ``DESRA_MAX_IMAGE_PIXELS`` sets another limit. (OpenCV's own
limit, ``OPENCV_IO_MAX_IMAGE_PIXELS``, 2**30 by default, still applies above it.)
"""
import os
import os.path as osp
import struct
from typing import Dict, List, Optional, Sequence, Set, Tuple

import cv2
import numpy as np

from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.utils import atomic_write_path, notice

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
#: Most pixels (width x height) an image or mask may have; ``DESRA_MAX_IMAGE_PIXELS`` overrides it.
MAX_IMAGE_PIXELS = 2**28
#: Environment variable that overrides :data:`MAX_IMAGE_PIXELS` (a positive whole number of pixels).
MAX_IMAGE_PIXELS_ENV = 'DESRA_MAX_IMAGE_PIXELS'
#: Start code of a JPEG frame header (SOF0 .. SOF15 without DHT, JPG and DAC, which share the range).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


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


def _jpeg_dimensions(content: bytes) -> Optional[Tuple[int, int]]:
    """Width and height of a JPEG's frame header: the markers before it are walked by their lengths."""
    i = 2
    while i + 9 <= len(content):
        if content[i] != 0xFF:
            return None
        marker = content[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
        elif marker in _JPEG_FRAMES:
            height, width = struct.unpack('>HH', content[i + 5:i + 9])
            return width, height
        elif marker == 0xDA:  # a scan before any frame header
            return None
        else:
            i += 2 + int.from_bytes(content[i + 2:i + 4], 'big')
    return None


def _tiff_dimensions(content: bytes) -> Optional[Tuple[int, int]]:
    """Width and height (tags 256 and 257) of the first directory of a classic TIFF file."""
    order = '<' if content[:2] == b'II' else '>'
    (first, ) = struct.unpack_from(order + 'I', content, 4)
    if first + 2 > len(content):
        return None
    (count, ) = struct.unpack_from(order + 'H', content, first)
    sizes = {}
    for start in range(first + 2, min(first + 2 + 12 * count, len(content) - 11), 12):
        tag, kind = struct.unpack_from(order + 'HH', content, start)
        if tag in (256, 257) and kind in (3, 4):  # SHORT or LONG
            sizes[tag] = struct.unpack_from(order + ('H' if kind == 3 else 'I'), content, start + 8)[0]
    return (sizes[256], sizes[257]) if len(sizes) == 2 else None


def _webp_dimensions(content: bytes) -> Optional[Tuple[int, int]]:
    """Width and height of a WebP's first chunk (lossy ``VP8``, lossless ``VP8L`` or extended ``VP8X``)."""
    chunk = content[12:16]
    if chunk == b'VP8 ' and len(content) >= 30 and content[23:26] == b'\x9d\x01\x2a':
        width, height = struct.unpack('<HH', content[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b'VP8L' and len(content) >= 25 and content[20] == 0x2F:
        bits = int.from_bytes(content[21:25], 'little')
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b'VP8X' and len(content) >= 30:
        return int.from_bytes(content[24:27], 'little') + 1, int.from_bytes(content[27:30], 'little') + 1
    return None


def image_dimensions(content: bytes) -> Optional[Tuple[int, int]]:
    """The width and height an encoded image's header declares, read without decoding the pixels.

    Args:
        content (bytes): Encoded PNG, JPEG, BMP, TIFF or WebP image (at least its header).

    Returns:
        tuple[int, int] | None: ``(width, height)`` as declared (may be 0 or negative in a broken file), or None
        when the format is another or its header is too short or not understood.
    """
    if content[:8] == b'\x89PNG\r\n\x1a\n' and content[12:16] == b'IHDR' and len(content) >= 24:
        return struct.unpack('>II', content[16:24])
    if content[:2] == b'\xff\xd8':
        return _jpeg_dimensions(content)
    if content[:2] == b'BM' and len(content) >= 26:
        if int.from_bytes(content[14:18], 'little') == 12:  # OS/2 core header: unsigned 16-bit sides
            return struct.unpack('<HH', content[18:22])
        width, height = struct.unpack('<ii', content[18:26])
        return width, abs(height)  # a negative height stores the rows top-down
    if content[:4] in (b'II*\x00', b'MM\x00*') and len(content) >= 8:
        return _tiff_dimensions(content)
    if content[:4] == b'RIFF' and content[8:12] == b'WEBP':
        return _webp_dimensions(content)
    return None


def max_image_pixels() -> int:
    """The pixel limit in force: ``DESRA_MAX_IMAGE_PIXELS`` when set, else :data:`MAX_IMAGE_PIXELS`.

    Returns:
        int: Most pixels an image may have.

    Raises:
        DesraSettingsError: If the environment variable is set to something else than a positive whole number.
    """
    raw = os.environ.get(MAX_IMAGE_PIXELS_ENV, '').strip()
    if not raw:
        return MAX_IMAGE_PIXELS
    if not raw.isdigit() or int(raw) == 0:
        raise DesraSettingsError(f'{MAX_IMAGE_PIXELS_ENV}={raw}: must be a positive whole number of pixels')
    return int(raw)


def check_image_size(path: str, width: int, height: int) -> None:
    """Refuse an image whose declared size has a side that is not positive, or more pixels than the limit.

    Args:
        path (str): File named in the error.
        width (int): Declared width.
        height (int): Declared height.

    Raises:
        DesraInputError: If a side is not positive or ``width * height`` exceeds :func:`max_image_pixels`.
    """
    if width <= 0 or height <= 0:
        raise DesraInputError(f'{path}: declares a {width}x{height} image (a side is not positive)')
    limit = max_image_pixels()
    if width * height > limit:
        raise DesraInputError(f'{path}: {width}x{height} image ({width * height} pixels) exceeds the limit of {limit} '
                              f'pixels; set {MAX_IMAGE_PIXELS_ENV} to allow larger images')


def _decode(content: bytes, path: str, what: str) -> np.ndarray:
    """Decode bytes with OpenCV (``IMREAD_UNCHANGED``) after checking the data is complete and its size allowed."""
    if not content:
        raise DesraInputError(f'{path}: empty file')
    reason = _truncation(content)
    if reason:
        raise DesraInputError(f'{path}: {reason}')
    size = image_dimensions(content)
    if size is not None:
        check_image_size(path, *size)
    try:
        img = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as err:  # e.g. OpenCV's own size limit for a format whose header is not read above
        reason = str(err).strip().split('error: ', 1)[-1]
        raise DesraInputError(f'{path}: cannot decode {what} (OpenCV: {reason})') from err
    except MemoryError as err:
        raise DesraInputError(f'{path}: not enough memory to decode this {what}') from err
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
        DesraInputError: If the data is empty, truncated, corrupt, too large or of an unsupported kind.
    """
    return to_bgr_uint8(_decode(content, path, 'image'), path)


def read_image(path: str) -> np.ndarray:
    """Read an image file as ``HxWx3`` uint8 BGR, following the module's conversion rule.

    Args:
        path (str): Image file.

    Returns:
        np.ndarray: The image.

    Raises:
        DesraInputError: If the file is missing, unreadable, truncated, corrupt or too large (see
            :func:`check_image_size`), or of an unsupported kind.
    """
    return decode_image(_read_bytes(path), path)


def read_target_image(path: str) -> np.ndarray:
    """Read a photo that BasicSR's paired datasets will load as the target of an output made from it.

    This module reads images as they are stored: ``IMREAD_UNCHANGED`` ignores a JPEG's EXIF orientation tag, as
    Real-ESRGAN's inference script does. BasicSR's ``imfrombytes`` reads with ``IMREAD_COLOR``, which turns the image
    by that tag, so an output made from the stored pixels would not line up with the target BasicSR loads. Such a
    photo is refused.

    Args:
        path (str): Image file.

    Returns:
        np.ndarray: The image (``HxWx3`` uint8 BGR), as :func:`read_image` gives it.

    Raises:
        DesraInputError: As :func:`read_image`, or if OpenCV's colour read turns the image by its EXIF orientation.
    """
    content = _read_bytes(path)
    img = decode_image(content, path)
    buf = np.frombuffer(content, np.uint8)
    turned = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    stored = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if turned.shape != stored.shape or not np.array_equal(turned, stored):
        raise DesraInputError(f'{path}: its EXIF orientation tag turns it in BasicSR\'s loader but not here, so the '
                              'output would not line up with it; save the photo turned upright, without the tag')
    return img


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
    """Decode mask bytes with the module's one mask rule: 0/255 (0/65535) and 0/1 masks are binary, any other mask
    is thresholded at 127 (127 * 257 for 16-bit files) and reported as not binary.

    Args:
        content (bytes): Encoded mask image.
        path (str): File (or lmdb key) named in errors.
        channel (int | None): Channel holding the mask, RGBA order (0 red, 1 green, 2 blue, 3 alpha); None accepts
            single-channel files and colour files whose colour channels agree.
        channel_option (str): How the user names the channel (the command-line option or the option-file key),
            suggested by the errors about colour masks.

    Returns:
        tuple: ``(mask, binary)``: ``HxW`` bool mask, and whether the plane held only 0 and 1, or 0 and the
        maximum value.

    Raises:
        DesraInputError: If the data is empty, truncated, corrupt or too large, or a colour mask is ambiguous.
    """
    plane = _mask_plane(_decode(content, path, 'mask'), path, channel, channel_option)
    if plane.dtype not in (np.uint8, np.uint16):
        raise DesraInputError(f'{path}: unsupported mask pixel type {plane.dtype} (expected 8- or 16-bit)')
    top = np.iinfo(plane.dtype).max
    if plane.max() <= 1:
        return plane == 1, True
    if ((plane == 0) | (plane == top)).all():
        return plane == top, True
    return plane > (127 * 257 if plane.dtype == np.uint16 else 127), False


def load_mask(path: str, channel: Optional[int] = None) -> Tuple[np.ndarray, bool]:
    """Read a mask file and whether it was binary (see :func:`decode_mask`).

    Args:
        path (str): Mask image file.
        channel (int | None): See :func:`decode_mask`.

    Returns:
        tuple: ``(mask, binary)``.

    Raises:
        DesraInputError: If the file is missing, unreadable, truncated, corrupt or too large, or an ambiguous colour
            mask.
    """
    return decode_mask(_read_bytes(path), path, channel)


_THRESHOLDED: Set[str] = set()


def read_mask(path: str, channel: Optional[int] = None) -> np.ndarray:
    """Read a mask with the one mask rule (see :func:`decode_mask`); a mask that is not binary is thresholded and
    named in a notice on stderr, once per file and process (by rank 0 only under torchrun).

    Args:
        path (str): Mask image file.
        channel (int | None): See :func:`decode_mask`.

    Returns:
        np.ndarray: ``HxW`` bool array.

    Raises:
        DesraInputError: If the file is missing, unreadable, truncated, corrupt or too large, or an ambiguous colour
            mask.
    """
    mask, binary = load_mask(path, channel)
    if not binary and path not in _THRESHOLDED:
        _THRESHOLDED.add(path)
        notice(f'{path}: mask is not binary (values other than 0/255 or 0/1); thresholded at 127 (brighter is '
               'artifact)')
    return mask


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
