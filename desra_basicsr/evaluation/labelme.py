"""Ground-truth artifact masks from labelme annotations (the tool the DeSRA authors drew their GT with).

A labelme JSON file holds ``imageHeight``, ``imageWidth`` and a list of ``shapes``, each with a ``label``,
``shape_type`` and ``points`` (``[x, y]`` pairs in pixel coordinates). Supported shape types:

* ``polygon`` (three or more points): filled, boundary included; vertices rounded to the nearest pixel;
* ``rectangle`` (two opposite corners, any order): filled, both corners included;
* ``circle`` (centre, then a point on the circle): filled disc.

Several shapes are merged (union). Points outside the image are clipped; a coordinate that is not a finite number,
or lies more than :data:`MARGIN` pixels outside the image, is rejected with an error (a hostile or corrupt file
could otherwise wrap around the integer pixel grid and mark the wrong pixels). Shapes of other types (``line``,
``linestrip``, ``point``, ``mask``) cover no area and are rejected with an error, unless the label filter excludes
them.
"""
import json
from typing import Dict, Iterable, Optional, Tuple

import cv2
import numpy as np

from desra_basicsr.errors import DesraInputError
from desra_basicsr.image_io import check_image_size

AREA_SHAPES = ('polygon', 'rectangle', 'circle')
#: Farthest a point may lie outside the image, in pixels: far beyond any annotation, and small enough that OpenCV
#: draws the shapes of an image within the pixel limit without overflowing its integer coordinates.
MARGIN = 2**20


def _points(path: str, index: int, shape: Dict, size: Tuple[int, int], count: Optional[int],
            at_least: int = 0) -> np.ndarray:
    """The ``[x, y]`` points of one shape, rounded to the nearest pixel.

    Args:
        path (str): The labelme file (named in errors).
        index (int): The shape's index in ``shapes`` (named in errors).
        shape (dict): The shape.
        size (tuple[int, int]): The image's ``(width, height)``.
        count (int | None): The number of points the shape type needs; None: any.
        at_least (int): The fewest points it needs.

    Returns:
        np.ndarray: ``N x 2`` int64 points, each within :data:`MARGIN` pixels of the image.

    Raises:
        DesraInputError: For missing or malformed points, a coordinate that is not finite or lies beyond the margin,
            or the wrong number of points.
    """
    kind = shape.get('shape_type')
    try:
        pts = np.asarray(shape['points'], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err:
        raise DesraInputError(f'{path}: shape {index} has no valid "points" ({err})') from err
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise DesraInputError(f'{path}: shape {index} points must be a list of [x, y] pairs')
    if not np.all(np.isfinite(pts)):
        raise DesraInputError(f'{path}: shape {index} ({kind}) has a coordinate that is not a finite number')
    outside = np.any((pts < -MARGIN) | (pts > np.asarray(size) + MARGIN), axis=1)
    if outside.any():
        x, y = pts[outside][0]
        raise DesraInputError(f'{path}: shape {index} ({kind}) has the point [{x:g}, {y:g}], more than '
                              f'{MARGIN} pixels outside the {size[0]}x{size[1]} image')
    if (count is not None and len(pts) != count) or len(pts) < at_least:
        need = count if count is not None else f'at least {at_least}'
        raise DesraInputError(f'{path}: shape {index} ({kind}) needs {need} points, has {len(pts)}')
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
            malformed or unsupported shape, or a point that is not finite or lies more than :data:`MARGIN` pixels
            outside the image (the message names the file and shape).
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
            cv2.fillPoly(canvas, [_points(path, index, shape, (width, height), None, at_least=3).astype(np.int32)], 1)
        elif kind == 'rectangle':
            (x0, y0), (x1, y1) = _points(path, index, shape, (width, height), 2)
            cv2.rectangle(canvas, (int(x0), int(y0)), (int(x1), int(y1)), 1, thickness=-1)
        elif kind == 'circle':
            centre, edge = _points(path, index, shape, (width, height), 2)
            radius = int(round(float(np.hypot(*(edge - centre)))))
            cv2.circle(canvas, (int(centre[0]), int(centre[1])), radius, 1, thickness=-1)
        else:
            raise DesraInputError(f'{path}: shape {index} ({shape.get("label")!r}) has type {kind!r}, which covers '
                                  f'no area; supported: {", ".join(AREA_SHAPES)} (or exclude it with --label)')
    return canvas.astype(bool)
