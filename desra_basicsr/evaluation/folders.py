"""Folder-level helpers of the evaluation commands: mask pairing, size alignment, tables and JSON output."""
import json
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from desra_basicsr.constants import RELEASE_BORDER
from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.folders import pair_folders
from desra_basicsr.image_io import read_mask
from desra_basicsr.utils import atomic_write_path


def align_to(mask: np.ndarray, reference_shape: Tuple[int, int], path: str) -> np.ndarray:
    """Crop ``mask`` to ``reference_shape`` when it is larger by exactly the DeSRA release's border.

    The DeSRA release works in "valid" mode and returns masks :data:`~desra_basicsr.constants.RELEASE_BORDER`
    (5) pixels smaller on each side; its metric scripts crop the GT by that border, and so does this function. Any
    other size difference is an error: cropping it silently would score misaligned masks.

    Args:
        mask (np.ndarray): ``HxW`` mask to align (usually the GT).
        reference_shape (tuple): ``(h, w)`` of the other mask.
        path (str): File name used in the error message.

    Returns:
        np.ndarray: ``mask`` or its central crop.

    Raises:
        DesraInputError: If the sizes cannot be aligned.
    """
    if mask.shape == tuple(reference_shape):
        return mask
    b = RELEASE_BORDER
    if (mask.shape[0] - reference_shape[0], mask.shape[1] - reference_shape[1]) == (2 * b, 2 * b):
        return mask[b:-b, b:-b]
    raise DesraInputError(f'{path}: size {mask.shape[1]}x{mask.shape[0]} does not match its partner '
                          f'({reference_shape[1]}x{reference_shape[0]}); only a partner smaller by {b} pixels on '
                          'every side (valid-mode masks of the DeSRA release) is accepted')


def pair_masks(first: str, second: str, names: Sequence[str] = ('pred', 'gt')) -> List[Tuple[str, str]]:
    """Pair the mask files of two folders by stem; stems present in only one folder are listed on stderr.

    Args:
        first (str): First folder (e.g. detections).
        second (str): Second folder (e.g. ground truth).
        names (Sequence[str]): Option names of the two folders, for messages.

    Returns:
        list[tuple[str, str]]: ``(path_a, path_b)`` per stem present in both, sorted by stem.

    Raises:
        DesraSettingsError: If a folder is missing or empty, or no stem is present in both folders.
    """
    folders = dict(zip(names, (first, second)))
    pairs, absent = pair_folders(folders)
    for label, folder in folders.items():
        lacking = sorted(name for name, roles in absent.items() if label in roles)
        if lacking:
            shown = ', '.join(lacking[:5]) + (' ...' if len(lacking) > 5 else '')
            print(
                f'notice: {len(lacking)} image(s) missing from --{label} {folder}, not scored: {shown}',
                file=sys.stderr)
    if not pairs:
        raise DesraSettingsError(f'{first}: no mask shares a file name stem with {second}')
    return pairs


def read_mask_pair(path_a: str, path_b: str, channel: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Read two masks of one image, cropping the larger when it has the release's border (see :func:`align_to`).

    Args:
        path_a (str): First mask.
        path_b (str): Second mask.
        channel (int | None): Channel of colour masks (see :func:`desra_basicsr.image_io.decode_mask`).

    Returns:
        tuple: ``(mask_a, mask_b)``, ``HxW`` bool masks of the same shape.

    Raises:
        DesraInputError: If a mask is unreadable or the two cannot be aligned.
    """
    a, b = read_mask(path_a, channel), read_mask(path_b, channel)
    if a.shape != b.shape:
        if a.size > b.size:
            a = align_to(a, b.shape, path_a)
        else:
            b = align_to(b, a.shape, path_b)
    return a, b


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Format rows as a plain-text table with right-aligned columns (floats with 4 decimals).

    Args:
        header (Sequence[str]): Column titles.
        rows (Sequence[Sequence]): Table rows.

    Returns:
        str: The table, one line per row, with a rule under the header.
    """
    cells: List[List[str]] = [list(map(str, header))]
    for row in rows:
        cells.append([f'{v:.4f}' if isinstance(v, float) else str(v) for v in row])
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ['  '.join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, '-' * len(lines[0]))
    return '\n'.join(lines)


def write_json(path: str, data: Dict) -> None:
    """Write ``data`` as indented JSON, atomically.

    Args:
        path (str): Destination file.
        data (dict): JSON-serialisable data.
    """
    with atomic_write_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(data, f, indent=2)
            f.write('\n')
