"""Folder-level helpers of the evaluation commands: mask pairing, size alignment, tables and JSON output."""
import json
import sys
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np

from desra_basicsr.errors import DesraInputError
from desra_basicsr.image_io import pair_by_stem, read_mask, stem
from desra_basicsr.utils import atomic_write_path


def align_to(mask: np.ndarray, reference_shape: Tuple[int, int], path: str) -> np.ndarray:
    """Crop ``mask`` to ``reference_shape`` when it is larger by the same even margin on every side.

    This accepts masks made by the DeSRA release, which works in "valid" mode and returns masks 5 pixels
    smaller on each side: its metric scripts crop the GT by 5 pixels, and so does this function. Any other size
    difference is an error.

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
    dh, dw = mask.shape[0] - reference_shape[0], mask.shape[1] - reference_shape[1]
    if dh == dw and dh > 0 and dh % 2 == 0:
        b = dh // 2
        return mask[b:-b, b:-b]
    raise DesraInputError(f'{path}: size {mask.shape[1]}x{mask.shape[0]} does not match its partner '
                          f'({reference_shape[1]}x{reference_shape[0]}); only a partner smaller by the same margin '
                          'on every side (valid-mode masks of the DeSRA release) is accepted')


def iter_mask_pairs(first: str, second: str,
                    names: Sequence[str] = ('pred', 'gt')) -> Iterator[Tuple[str, np.ndarray, np.ndarray]]:
    """Yield ``(stem, mask_a, mask_b)`` for every stem present in both folders, one pair at a time.

    Stems present in only one folder are listed on stderr (they are not scored). When one mask is larger than
    its partner by an even margin on every side, the larger is cropped centrally (see :func:`align_to`).

    Args:
        first (str): First folder (e.g. detections).
        second (str): Second folder (e.g. ground truth).
        names (Sequence[str]): Names of the two folders for messages.

    Yields:
        tuple: ``(stem, mask_a, mask_b)`` with ``HxW`` bool masks of the same shape.

    Raises:
        DesraInputError: If no stem is present in both folders, or a mask is unreadable or misaligned.
    """
    pairs, missing = pair_by_stem([first, second])
    if missing:
        for folder_index, label in enumerate(names):
            folder = (first, second)[folder_index]
            absent = sorted(k for k, where in missing.items() if folder in where)
            if absent:
                shown = ', '.join(absent[:5]) + (' ...' if len(absent) > 5 else '')
                print(
                    f'notice: {len(absent)} image(s) missing from --{label} {folder}, not scored: {shown}',
                    file=sys.stderr)
    if not pairs:
        raise DesraInputError(f'{first}: no mask shares a file name stem with {second}')
    for path_a, path_b in pairs:
        a, b = read_mask(path_a), read_mask(path_b)
        if a.shape != b.shape:
            if a.size > b.size:
                a = align_to(a, b.shape, path_a)
            else:
                b = align_to(b, a.shape, path_b)
        yield stem(path_a), a, b


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
