"""Ground-truth artifact masks from labelme annotations (the tool the DeSRA authors drew their GT with).

A labelme JSON file holds ``imageHeight``, ``imageWidth`` and a list of ``shapes``, each with a ``label``,
``shape_type`` and ``points`` (``[x, y]`` pairs in pixel coordinates). Supported shape types:

* ``polygon`` (three or more points): filled, boundary included; vertices rounded to the nearest pixel;
* ``rectangle`` (two opposite corners, any order): filled, both corners included;
* ``circle`` (centre, then a point on the circle): filled disc.

Several shapes are merged (union). Points outside the image are clipped. Shapes of other types (``line``,
``linestrip``, ``point``, ``mask``) cover no area and are rejected with an error, unless the label filter excludes
them.
"""
import json
from typing import Dict, Iterable, Optional

import cv2
import numpy as np

from desra_basicsr.errors import DesraInputError
from desra_basicsr.image_io import check_image_size

AREA_SHAPES = ('polygon', 'rectangle', 'circle')


def _points(path: str, index: int, shape: Dict, count: Optional[int], at_least: int = 0) -> np.ndarray:
    try:
        pts = np.asarray(shape['points'], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err:
        raise DesraInputError(f'{path}: shape {index} has no valid "points" ({err})') from err
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.all(np.isfinite(pts)):
        raise DesraInputError(f'{path}: shape {index} points must be a list of [x, y] pairs')
    if (count is not None and len(pts) != count) or len(pts) < at_least:
        need = count if count is not None else f'at least {at_least}'
        raise DesraInputError(f'{path}: shape {index} ({shape.get("shape_type")}) needs {need} points, has {len(pts)}')
    return np.round(pts).astype(np.int64)


def labelme_to_mask(path: str, labels: Optional[Iterable[str]] = None) -> np.ndarray:
    """Rasterise the area shapes of one labelme JSON file into a binary mask of the image's size.

    Args:
        path (str): labelme JSON file.
        labels (Iterable[str] | None): Keep only shapes with one of these labels; None keeps every shape.

    Returns:
        np.ndarray: ``imageHeight x imageWidth`` bool mask (True = artifact).

    Raises:
        DesraInputError: If the file is missing or not valid JSON, lacks a positive ``imageHeight`` /
            ``imageWidth``, declares an image over the pixel limit (see
            :func:`desra_basicsr.image_io.check_image_size`; checked before the mask is allocated), or holds a
            malformed or unsupported shape (the message names the file and shape).
    """
    try:
        with open(path, 'r', encoding='utf-8') as f:
            data = json.load(f)
    except FileNotFoundError as err:
        raise DesraInputError(f'{path}: file not found') from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DesraInputError(f'{path}: not a readable labelme JSON file ({err})') from err
    if not isinstance(data, dict):
        raise DesraInputError(f'{path}: not a labelme annotation (top level is not an object)')
    height, width = data.get('imageHeight'), data.get('imageWidth')
    if not all(isinstance(side, int) and not isinstance(side, bool) and side > 0 for side in (height, width)):
        raise DesraInputError(f'{path}: needs positive integer imageHeight and imageWidth, got {height!r}, {width!r}')
    check_image_size(path, width, height)
    shapes = data.get('shapes', [])
    if not isinstance(shapes, list):
        raise DesraInputError(f'{path}: "shapes" must be a list')
    keep = None if labels is None else set(labels)
    canvas = np.zeros((height, width), np.uint8)
    for index, shape in enumerate(shapes):
        if not isinstance(shape, dict):
            raise DesraInputError(f'{path}: shape {index} is not an object')
        if keep is not None and shape.get('label') not in keep:
            continue
        kind = shape.get('shape_type') or 'polygon'  # labelme writes null for polygons in old versions
        if kind == 'polygon':
            cv2.fillPoly(canvas, [_points(path, index, shape, None, at_least=3).astype(np.int32)], 1)
        elif kind == 'rectangle':
            (x0, y0), (x1, y1) = _points(path, index, shape, 2)
            cv2.rectangle(canvas, (int(x0), int(y0)), (int(x1), int(y1)), 1, thickness=-1)
        elif kind == 'circle':
            centre, edge = _points(path, index, shape, 2)
            radius = int(round(float(np.hypot(*(edge - centre)))))
            cv2.circle(canvas, (int(centre[0]), int(centre[1])), radius, 1, thickness=-1)
        else:
            raise DesraInputError(f'{path}: shape {index} ({shape.get("label")!r}) has type {kind!r}, which covers '
                                  f'no area; supported: {", ".join(AREA_SHAPES)} (or exclude it with --label)')
    return canvas.astype(bool)
