"""Synthetic artifacts with exact masks: paint one artifact class into a random region of a clean photo.

Each class of :data:`CLASSES` models what GAN-SR and other generators really produce (docs: "Artifact zoo", with
pictures):

* ``texture`` - noise-like fine texture over flat areas (the "hallucinated" texture of GAN-SR models); strength:
  its standard deviation in grey levels. The region is placed on the flattest of a few candidate places.
* ``grid`` - a periodic checkerboard of period 2-4 pixels (pixel-shuffle and transposed-convolution artifacts);
  strength: its RMS amplitude in grey levels.
* ``halo`` - over-sharpening halos and ringing around edges (the residual of a windowed-sinc low-pass added back);
  strength: the sharpening amount. The region is placed on the most edged of a few candidate places.
* ``blotch`` - colour blotches: smooth, saturated chroma shifts; strength: their RMS in YCrCb chroma units. The
  region is placed on the flattest of a few candidate places.
* ``paste`` - texture pasted from elsewhere in the same image (the analogue of DiffGAR's VQGAN token replacement);
  strength: its opacity. The source is the candidate place whose texture differs most from the region's.
* ``tone`` - a mild perturbation of contrast, brightness and colour, smooth over the image (the analogue of
  DiffGAR's scale and shift of DDIM latents); strength: the relative size of the gain and shift. Its default area
  is the whole image, so its mask is the whole image.

The region is a rectangle (axis-aligned), an ellipse (rotated) or a free-form blob (star-shaped, hence connected), of
a random aspect ratio; its area is exact: ``mask.sum() == region_pixels(shape, area)``, that is ``max(1, round(area
* H * W))``. The artifact is blended in with a weight that rises from the mask's edge to 1 over :data:`FEATHER`
pixels inside the mask, so that the region has no hard seam. Guarantees (tested): the pixels outside the mask are
exactly those of the clean image; the same generator state gives the same image and mask. A pixel inside the mask
may keep its value (where the artifact rounds to nothing, e.g. a halo far from any edge).

Example::

    import numpy as np
    from desra_basicsr.zoo.synthetic import paint, rng_for
    img, mask = paint(photo, 'grid', rng_for(0, 'photo__grid__0'), shape='ellipse', area=0.05)
"""
import hashlib
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import cv2
import numpy as np

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.zoo import SHAPES

#: Width (pixels) over which the artifact's blending weight rises from the mask's edge to 1, inside the mask.
FEATHER = 3.0
#: Candidate places scored when a class prefers flat areas, edges, or a source of different texture.
CANDIDATES = 32
#: Local standard deviation (grey levels) at which an additive artifact's amplitude doubles: an artifact over texture
#: must be stronger to stand out as much as over a flat area (contrast masking).
MASKING_TEXTURE = 8.0
#: Largest factor of that growth (on strong texture).
MASKING_MAX = 3.0
#: The constant of DeSRA-det's texture comparison (paper eq. 7; :mod:`desra_basicsr.detection.indicator`).
TEXTURE_C = (0.03 * 255)**2
#: Largest aspect ratio (long side / short side) of a region.
MAX_ASPECT = 2.5

#: A painter: (clean image as float64 BGR in [0, 255], mask, generator, strength) -> the image with the artifact
#: everywhere it applies (only its pixels inside the mask are used).
Painter = Callable[[np.ndarray, np.ndarray, np.random.Generator, float], np.ndarray]


@dataclass(frozen=True)
class ArtifactClass:
    """One class of synthetic artifacts.

    Attributes:
        painter (Painter): Paints the artifact.
        strength (float): Default strength (visible to DeSRA-det, except ``tone``: docs "Artifact zoo").
        lo (float): Smallest strength allowed.
        hi (float): Largest strength allowed.
        area (float): Default area, as a fraction of the image.
        place (str): Where the region goes: ``'any'``, ``'flat'`` (the flattest candidate) or ``'edges'`` (the
            most edged candidate).
        description (str): What the class models, in one line (``scripts/zoo_examples.py`` prints it).
    """
    painter: Painter
    strength: float
    lo: float
    hi: float
    area: float
    place: str
    description: str


def rng_for(seed: int, key: str) -> np.random.Generator:
    """A generator seeded by a seed and a key (e.g. an item name), the same in every process and on every machine.

    Args:
        seed (int): The run's seed (>= 0).
        key (str): What is drawn for (different keys give independent streams).

    Returns:
        np.random.Generator: The generator.
    """
    digest = hashlib.sha256(key.encode('utf-8')).digest()
    return np.random.default_rng(np.random.SeedSequence([int(seed), int.from_bytes(digest[:16], 'little')]))


# ----------------------------------------------------------------------------------------------- regions
def region_pixels(shape: Tuple[int, int], area: float) -> int:
    """The exact pixel count of a region of ``area`` (fraction) in an image of ``shape``.

    Args:
        shape (tuple[int, int]): ``(H, W)``.
        area (float): Fraction of the image, in (0, 1].

    Returns:
        int: ``max(1, round(area * H * W))``.
    """
    return max(1, int(round(area * shape[0] * shape[1])))


def _texture_map(image: np.ndarray) -> np.ndarray:
    """Local standard deviation of the grey image (Gaussian sigma 2): high on edges and texture, low on flat areas."""
    grey = cv2.cvtColor(image.astype(np.float32), cv2.COLOR_BGR2GRAY)
    mean = cv2.GaussianBlur(grey, (0, 0), 2.0)
    return np.sqrt(np.maximum(cv2.GaussianBlur(grey * grey, (0, 0), 2.0) - mean * mean, 0))


def _choose_center(texture: np.ndarray, radius: int, place: str, rng: np.random.Generator) -> Tuple[float, float]:
    """A region centre: random, or the flattest / most edged of :data:`CANDIDATES` random places."""
    h, w = texture.shape
    centers = np.stack([rng.uniform(0, h - 1, CANDIDATES), rng.uniform(0, w - 1, CANDIDATES)], axis=1)
    if place == 'any':
        return float(centers[0, 0]), float(centers[0, 1])
    side = 2 * max(1, radius) + 1
    local = cv2.blur(texture, (side, side))
    scores = local[centers[:, 0].round().astype(int), centers[:, 1].round().astype(int)]
    best = np.argmin(scores) if place == 'flat' else np.argmax(scores)
    return float(centers[best, 0]), float(centers[best, 1])


def _shape_score(shape: str, size: Tuple[int, int], center: Tuple[float, float],
                 rng: np.random.Generator) -> np.ndarray:
    """A field whose sublevel sets are the regions of ``shape`` around ``center`` (the region: its lowest pixels)."""
    h, w = size
    aspect = float(np.exp(rng.uniform(-np.log(MAX_ASPECT), np.log(MAX_ASPECT)))) ** 0.5
    angle = rng.uniform(0, np.pi) if shape != 'rectangle' else 0.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dy, dx = yy - center[0], xx - center[1]
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / aspect
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) * aspect
    phi = np.arctan2(v, u)
    if shape == 'rectangle':
        score = np.maximum(np.abs(u), np.abs(v))
    else:
        score = np.hypot(u, v)
    if shape == 'blob':
        radius = np.ones_like(phi)
        for k in range(2, 6):  # a random star-shaped outline: its sublevel sets are connected
            radius += rng.uniform(0, 0.3 / k**0.5) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
        score = score / radius
    # ties (a rectangle's last ring) are broken by the angle, so the partial ring is one contiguous arc
    return score + 1e-6 * (phi + np.pi)


def region_mask(image: np.ndarray, shape: str, area: float, place: str, rng: np.random.Generator) -> np.ndarray:
    """A region of ``shape`` with exactly :func:`region_pixels` pixels, placed as ``place`` says.

    Args:
        image (np.ndarray): The clean image, ``HxWx3`` (its texture guides ``'flat'`` and ``'edges'``).
        shape (str): One of :data:`SHAPES`.
        area (float): Fraction of the image, in (0, 1].
        place (str): ``'any'``, ``'flat'`` or ``'edges'`` (see :class:`ArtifactClass`).
        rng (np.random.Generator): The generator.

    Returns:
        np.ndarray: ``HxW`` bool mask.
    """
    h, w = image.shape[:2]
    count = region_pixels((h, w), area)
    mask = np.zeros(h * w, bool)
    if count >= h * w:
        mask[:] = True
        return mask.reshape(h, w)
    radius = int(np.sqrt(count / np.pi))
    center = _choose_center(_texture_map(image), radius, place, rng)
    score = _shape_score(shape, (h, w), center, rng).ravel()
    mask[np.argpartition(score, count - 1)[:count]] = True
    return mask.reshape(h, w)


# ----------------------------------------------------------------------------------------------- painters
def _unit_noise(shape: Tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """White noise blurred with a Gaussian of ``sigma`` pixels, scaled to zero mean and unit standard deviation."""
    noise = cv2.GaussianBlur(rng.standard_normal(shape), (0, 0), sigma)
    return (noise - noise.mean()) / max(float(noise.std()), 1e-12)


def _masking(image: np.ndarray) -> np.ndarray:
    """``HxWx1`` factor of an additive artifact's amplitude: 1 on flat areas, growing with the local texture."""
    return np.minimum(1 + _texture_map(image) / MASKING_TEXTURE, MASKING_MAX)[:, :, None]


def _texture(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Fine noise-like texture, mostly in luminance with a little colour."""
    h, w = mask.shape
    grain = _unit_noise((h, w), rng.uniform(0.5, 0.9), rng)
    colour = np.stack([_unit_noise((h, w), 0.7, rng) for _ in range(3)], axis=2)
    return image + strength * _masking(image) * (grain[:, :, None] + 0.25 * colour)


def _grid(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A checkerboard of period 2-4 pixels, slightly tinted."""
    h, w = mask.shape
    period = int(rng.integers(2, 5))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    phase = rng.integers(0, period, 2)
    pattern = np.cos(2 * np.pi * (yy + phase[0]) / period) * np.cos(2 * np.pi * (xx + phase[1]) / period)
    pattern /= max(float(np.sqrt(np.mean(pattern**2))), 1e-12)
    tint = 1 + rng.uniform(-0.3, 0.3, 3)
    return image + strength * _masking(image) * pattern[:, :, None] * tint


def _lowpass_kernel(cutoff: float, radius: int) -> np.ndarray:
    """A 1D Lanczos-windowed sinc low-pass of ``cutoff`` cycles per pixel, normalised."""
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = 2 * cutoff * np.sinc(2 * cutoff * x) * np.sinc(x / (radius + 1))
    return kernel / kernel.sum()


def _halo(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Over-sharpening: the residual of a windowed-sinc low-pass (halos and ringing at edges) added back."""
    kernel = _lowpass_kernel(rng.uniform(0.06, 0.12), 12)
    low = cv2.sepFilter2D(image, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
    return image + strength * (image - low)


def _blotch(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Smooth saturated chroma blotches (Cr and Cb shifted by blurred noise)."""
    h, w = mask.shape
    ycrcb = cv2.cvtColor(image.astype(np.float32), cv2.COLOR_BGR2YCrCb).astype(np.float64)
    sigma = rng.uniform(2.0, 4.0)
    for channel in (1, 2):
        ycrcb[:, :, channel] += strength * _unit_noise((h, w), sigma, rng)
    return cv2.cvtColor(ycrcb.astype(np.float32), cv2.COLOR_YCrCb2BGR).astype(np.float64)


def _paste(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """The image shifted (wrapping around) so that the region shows the texture of another place.

    Of :data:`CANDIDATES` random shifts, the one whose texture differs most from the region's is taken, compared as
    DeSRA-det compares textures (``(2ab + C) / (a^2 + b^2 + C)`` of the local standard deviations, C = (0.03 *
    255)^2): wrong content of the same texture would be a different picture, not an artifact.
    """
    h, w = mask.shape
    texture = _texture_map(image)
    here = texture[mask]
    shifts = np.stack([rng.integers(0, h, CANDIDATES), rng.integers(0, w, CANDIDATES)], axis=1)

    def similarity(shift: np.ndarray) -> float:
        there = np.roll(texture, tuple(shift), axis=(0, 1))[mask]
        return float(np.mean((2 * here * there + TEXTURE_C) / (here**2 + there**2 + TEXTURE_C)))

    source = np.roll(image, tuple(shifts[int(np.argmin([similarity(s) for s in shifts]))]), axis=(0, 1))
    return image + strength * (source - image)


def _smooth_field(shape: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A field in [-1, 1] that varies over the whole image (one random cosine wave of 0.5-2 periods)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    angle = rng.uniform(0, 2 * np.pi)
    cycles = rng.uniform(0.5, 2.0)
    along = (xx * np.cos(angle) + yy * np.sin(angle)) / max(h, w)
    return np.cos(2 * np.pi * cycles * along + rng.uniform(0, 2 * np.pi))


def _tone(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Per-channel contrast gain and brightness shift, each half constant and half varying smoothly."""
    field = _smooth_field(mask.shape, rng)[:, :, None]
    gain = 1 + strength * (rng.uniform(-1, 1, 3) + 0.5 * rng.uniform(-1, 1, 3) * field)
    shift = 127.5 * strength * (rng.uniform(-1, 1, 3) + 0.5 * rng.uniform(-1, 1, 3) * field)
    mean = image[mask].mean(axis=0)
    return (image - mean) * gain + mean + shift


#: The artifact classes by name (docs: "Artifact zoo").
CLASSES: Dict[str, ArtifactClass] = {
    'texture': ArtifactClass(_texture, 14.0, 1.0, 60.0, 0.05, 'flat', 'noise-like fine texture over flat areas'),
    'grid': ArtifactClass(_grid, 14.0, 1.0, 60.0, 0.05, 'any', 'checkerboard of period 2-4 px, as pixel shuffle makes'),
    'halo': ArtifactClass(_halo, 3.0, 0.25, 8.0, 0.05, 'edges', 'over-sharpening halos and ringing at edges'),
    'blotch': ArtifactClass(_blotch, 25.0, 2.0, 80.0, 0.05, 'flat', 'saturated colour blotches over flat areas'),
    'paste': ArtifactClass(_paste, 1.0, 0.1, 1.0, 0.05, 'any', 'texture pasted from elsewhere in the image'),
    'tone': ArtifactClass(_tone, 0.08, 0.01, 0.3, 1.0, 'any', 'mild smooth contrast, brightness and colour shift'),
}


def check_strength(name: str, strength: float) -> None:
    """Refuse an unknown class or a strength outside its range.

    Args:
        name (str): A class name.
        strength (float): Its strength.

    Raises:
        DesraSettingsError: Naming the class and the allowed range.
    """
    if name not in CLASSES:
        raise DesraSettingsError(f'--classes {name}: unknown artifact class; choose from {", ".join(CLASSES)}')
    cls = CLASSES[name]
    if not np.isfinite(strength) or not cls.lo <= strength <= cls.hi:
        raise DesraSettingsError(f'--strength {name}={strength}: the strength of {name} must lie in '
                                 f'[{cls.lo:g}, {cls.hi:g}] (default {cls.strength:g})')


def paint(image: np.ndarray,
          name: str,
          rng: np.random.Generator,
          strength: Optional[float] = None,
          shape: str = 'random',
          area: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Paint an artifact of class ``name`` into a random region of ``image``.

    Args:
        image (np.ndarray): The clean image, ``HxWx3`` uint8 BGR (as OpenCV reads it).
        name (str): A class of :data:`CLASSES`.
        rng (np.random.Generator): The generator (e.g. :func:`rng_for`); the same state gives the same result.
        strength (float | None): In the class's range; None: its default.
        shape (str): One of :data:`SHAPES`, or ``'random'`` (drawn from ``rng``).
        area (float | None): The region's area as a fraction of the image, in (0, 1]; None: the class's default.

    Returns:
        tuple: ``(painted, mask)``: the ``HxWx3`` uint8 image, equal to ``image`` outside the mask, and the ``HxW``
        bool mask of exactly :func:`region_pixels` pixels.

    Raises:
        DesraSettingsError: For an unknown class or shape, or a strength or area out of range.
        ValueError: If ``image`` is not ``HxWx3`` uint8.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'expected an HxWx3 uint8 image, got shape {image.shape} and dtype {image.dtype}')
    cls = CLASSES.get(name)
    strength = cls.strength if cls is not None and strength is None else strength
    check_strength(name, strength)
    area = cls.area if area is None else area
    if not np.isfinite(area) or not 0 < area <= 1:
        raise DesraSettingsError(f'--area {area}: must be a fraction of the image in (0, 1]')
    if shape == 'random':
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
    if shape not in SHAPES:
        raise DesraSettingsError(f'--shape {shape}: choose from random, {", ".join(SHAPES)}')
    mask = region_mask(image, shape, area, cls.place, rng)
    clean = image.astype(np.float64)
    painted = cls.painter(clean, mask, rng, float(strength))
    inside = mask.astype(np.uint8)
    weight = np.ones(mask.shape) if inside.all() else cv2.distanceTransform(inside, cv2.DIST_L2, 3) / FEATHER
    weight = np.minimum(weight, 1.0)[:, :, None]
    out = np.clip(np.rint(clean + weight * (painted - clean)), 0, 255).astype(np.uint8)
    out[~mask] = image[~mask]
    return out, mask
