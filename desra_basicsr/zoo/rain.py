"""Synthetic rain streaks on clean photos: the inputs of the cross-domain deraining test (docs: "Deraining").

Rain100L-style datasets add a layer of streaks to a clean photo: sparse drops, blurred a little, smeared along one
direction by a motion-blur kernel, then blended with the photo. This module does the same with five documented
controls (:class:`desra_basicsr.zoo.RainParams`):

* ``angle`` - tilt of the streaks from the vertical, in degrees (positive: leaning right);
* ``length`` - length of a streak in pixels (the motion-blur kernel's);
* ``density`` - fraction of pixels that start a drop;
* ``blur`` - standard deviation (pixels) of the Gaussian blur of the drops before they are smeared: thicker,
  softer streaks;
* ``intensity`` - brightness of a streak's core, in (0, 1] of full white.

Each photo draws its own parameters around the run's (:func:`draw_params`: angle +- :data:`ANGLE_JITTER` degrees,
the others times a factor in [1 - :data:`JITTER`, 1 + :data:`JITTER`]), as Rain100L mixes directions and sizes
between images. The layer is screen-blended: ``out = 1 - (1 - photo) * (1 - rain)``, so rain only brightens, as real
streaks do. Pure numpy / OpenCV functions: no BasicSR, no mmseg.

Example::

    from desra_basicsr.zoo import RainParams
    from desra_basicsr.zoo.rain import draw_params, rain_image
    from desra_basicsr.zoo.synthetic import rng_for
    rng = rng_for(0, 'photo')
    rainy = rain_image(photo, draw_params(RainParams(), rng), rng)
"""
from dataclasses import replace

import cv2
import numpy as np

from desra_basicsr.zoo import RainParams

#: Half-width (degrees) of the uniform jitter of a photo's streak angle around the run's.
ANGLE_JITTER = 10.0
#: Relative half-width of the uniform jitter of a photo's length, density, blur and intensity around the run's.
JITTER = 0.3
#: Values below this in the streak layer are set to 0: OpenCV filters large kernels through the DFT, whose round-off
#: leaves values of about 1e-8 on every pixel, which would make the whole photo "rainy" by a hair.
ROUND_OFF = 1e-6


def draw_params(base: RainParams, rng: np.random.Generator) -> RainParams:
    """One photo's parameters: the run's, jittered (module docstring).

    Args:
        base (RainParams): The run's parameters.
        rng (np.random.Generator): The photo's generator.

    Returns:
        RainParams: The photo's parameters; intensity stays at most 1 and length at least 1 pixel.
    """
    scale = rng.uniform(1 - JITTER, 1 + JITTER, size=4)
    return replace(
        base,
        angle=base.angle + rng.uniform(-ANGLE_JITTER, ANGLE_JITTER),
        length=max(1.0, base.length * scale[0]),
        density=base.density * scale[1],
        blur=base.blur * scale[2],
        intensity=min(1.0, base.intensity * scale[3]))


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line kernel: a streak of ``length`` pixels tilted ``angle`` degrees from the vertical.

    Args:
        length (float): Length in pixels (>= 1).
        angle (float): Tilt from the vertical, degrees.

    Returns:
        np.ndarray: ``(k, k)`` float32 kernel, odd ``k``, summing to 1.
    """
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    # A vertical line of exactly `length` pixels (its two end pixels partly covered), then rotated about the centre.
    distance = np.abs(np.arange(size) - size // 2)
    kernel[:, size // 2] = np.clip(length / 2 + 0.5 - distance, 0, 1)
    centre = ((size - 1) / 2.0, (size - 1) / 2.0)
    rotation = cv2.getRotationMatrix2D(centre, -angle, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (size, size), flags=cv2.INTER_LINEAR)
    return kernel / kernel.sum()


def streak_layer(shape: tuple, params: RainParams, rng: np.random.Generator) -> np.ndarray:
    """The rain layer of a photo of ``shape``: streaks in [0, 1], 0 where there is no rain.

    Args:
        shape (tuple): ``(H, W)``.
        params (RainParams): The photo's parameters.
        rng (np.random.Generator): The photo's generator.

    Returns:
        np.ndarray: ``(H, W)`` float32 in [0, 1].
    """
    height, width = shape[:2]
    drops = (rng.random((height, width)) < params.density).astype(np.float32)
    drops *= rng.uniform(0.6, 1.0, size=(height, width)).astype(np.float32)  # drops of unequal brightness
    if params.blur > 0:
        drops = cv2.GaussianBlur(drops, (0, 0), params.blur, borderType=cv2.BORDER_REFLECT)
        drops /= max(float(cv2.GaussianBlur(_impulse(params.blur), (0, 0), params.blur).max()), 1e-12)
    kernel = motion_kernel(params.length, params.angle)
    layer = cv2.filter2D(drops, -1, kernel / kernel.max(), borderType=cv2.BORDER_REFLECT)
    layer[layer < ROUND_OFF] = 0.0
    return np.clip(layer, 0.0, 1.0) * params.intensity


def _impulse(blur: float) -> np.ndarray:
    """A single bright pixel in a square wide enough for a Gaussian of ``blur``: the blur's peak normalises drops."""
    size = 2 * int(np.ceil(3 * blur)) + 1
    impulse = np.zeros((size, size), np.float32)
    impulse[size // 2, size // 2] = 1.0
    return impulse


def rain_image(image: np.ndarray, params: RainParams, rng: np.random.Generator) -> np.ndarray:
    """Add rain to a photo (screen blend of :func:`streak_layer`).

    Args:
        image (np.ndarray): ``(H, W)`` or ``(H, W, C)`` uint8 photo.
        params (RainParams): The photo's parameters.
        rng (np.random.Generator): The photo's generator.

    Returns:
        np.ndarray: The rainy photo, uint8, same shape; no pixel darker than the photo's.
    """
    layer = streak_layer(image.shape, params, rng)
    if image.ndim == 3:
        layer = layer[..., None]
    clean = image.astype(np.float32) / 255.0
    rainy = 1.0 - (1.0 - clean) * (1.0 - layer)
    return np.maximum(np.rint(rainy * 255.0), image).clip(0, 255).astype(np.uint8)
