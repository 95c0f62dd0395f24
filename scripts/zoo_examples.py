"""Draw the pictures of docs/zoo.md: each synthetic artifact class at its default strength, with its mask outlined.

The photo is scikit-image's ``astronaut`` shrunk to 128x128 (area interpolation): it has flat areas, edges and
texture. Each class is painted with :func:`desra_basicsr.zoo.synthetic.paint` at its default strength, an elliptic
region of ``--area`` (0.2, larger than the default 0.05 so that it shows at this size; ``tone`` keeps its default, the
whole image) and the seed ``--seed``, and its mask is outlined in green (1 pixel, outside the region where possible).
Writes ``<out>/clean.png`` and ``<out>/<class>.png``; and ``<out>/rain.png`` for docs/deraining.md: the photo at
``RAIN_SIZE`` pixels with rain of the default parameters (:class:`desra_basicsr.zoo.RainParams`) as drawn for a
photo by ``desra zoo rain --seed SEED``.

Usage (from the repository root)::

    .venv/bin/python scripts/zoo_examples.py --out docs/images/zoo
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np
from skimage import data

from desra_basicsr.image_io import write_image
from desra_basicsr.zoo import RainParams
from desra_basicsr.zoo.rain import draw_params, rain_image
from desra_basicsr.zoo.synthetic import CLASSES, paint, rng_for

SIZE = 128
RAIN_SIZE = 256
OUTLINE = (0, 255, 0)  # BGR green


def outlined(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of ``image`` with the outline of ``mask`` drawn on the pixels just outside it (inside at the edges)."""
    out = image.copy()
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~mask
    if mask.all():
        ring = np.ones_like(mask)
        ring[1:-1, 1:-1] = False
    out[ring] = OUTLINE
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default=osp.join('docs', 'images', 'zoo'), help='output folder')
    parser.add_argument('--area', type=float, default=0.2, help='region area of every class but tone (0.2)')
    parser.add_argument('--seed', type=int, default=0, help='seed (0)')
    args = parser.parse_args()
    photo = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    clean = cv2.resize(photo, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    os.makedirs(args.out, exist_ok=True)
    write_image(osp.join(args.out, 'clean.png'), clean)
    for name, cls in CLASSES.items():
        area = cls.area if cls.area == 1 else args.area
        painted, mask = paint(clean, name, rng_for(args.seed, name), shape='ellipse', area=area)
        write_image(osp.join(args.out, f'{name}.png'), outlined(painted, mask))
        print(f'{name} ({cls.description}): strength {cls.strength:g}, area {mask.mean():.3f}')
    rng = rng_for(args.seed, 'astronaut')
    params = draw_params(RainParams(), rng)
    rainy = rain_image(cv2.resize(photo, (RAIN_SIZE, RAIN_SIZE), interpolation=cv2.INTER_AREA), params, rng)
    write_image(osp.join(args.out, 'rain.png'), rainy)
    print('rain: ' + ', '.join(f'{k} {v:.3g}' for k, v in params.as_dict().items()))


if __name__ == '__main__':
    main()
