"""Synthetic artifacts: each class changes pixels only inside its exact mask, at the stated area, the same seed giving
the same result; the region shapes and placements; and what DeSRA-det sees of each class at its default strength."""
import cv2
import numpy as np
import pytest
from helpers.photos import PHOTOS, skimage_photo_bgr
from hypothesis import given, settings
from hypothesis import strategies as st

from desra_basicsr.detection.methods import build_detector
from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.zoo import SHAPES
from desra_basicsr.zoo.synthetic import CLASSES, paint, region_pixels, rng_for

#: Classes DeSRA-det sees at their default strength (``tone`` changes no texture: docs "Artifact zoo").
VISIBLE = tuple(name for name in CLASSES if name != 'tone')
#: Visibility criterion: the mean recall of DeSRA-det's mask over the painted mask, over photos and seeds.
MIN_RECALL = 0.5
SEEDS = (0, 1, 2)


def _crop(photo: str, top: int, left: int, h: int, w: int) -> np.ndarray:
    img = skimage_photo_bgr(photo)
    return np.ascontiguousarray(img[top:top + h, left:left + w])


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted(CLASSES)),
    photo=st.sampled_from(PHOTOS),
    top=st.integers(0, 150),
    left=st.integers(0, 150),
    h=st.integers(8, 120),
    w=st.integers(8, 120),
    shape=st.sampled_from(('random', ) + SHAPES),
    area=st.floats(0.001, 1.0),
    seed=st.integers(0, 2**32),
    strength=st.floats(0, 1))
def test_each_class_changes_only_its_mask_at_the_stated_area_and_repeats_with_its_seed(
        name, photo, top, left, h, w, shape, area, seed, strength):
    image = _crop(photo, top, left, h, w)
    before = image.copy()
    cls = CLASSES[name]
    value = cls.lo + strength * (cls.hi - cls.lo)
    out, mask = paint(image, name, rng_for(seed, 'key'), value, shape, area)
    assert np.array_equal(image, before)  # the input is not modified
    assert out.shape == image.shape and out.dtype == np.uint8 and mask.shape == image.shape[:2] and mask.dtype == bool
    assert np.array_equal(out[~mask], image[~mask])
    assert mask.sum() == region_pixels(image.shape[:2], area) == max(1, round(area * h * w))
    again, mask_again = paint(image, name, rng_for(seed, 'key'), value, shape, area)
    assert np.array_equal(again, out) and np.array_equal(mask_again, mask)


@pytest.mark.parametrize('name', sorted(CLASSES))
def test_defaults_change_the_region_and_other_seeds_other_regions(name):
    image = skimage_photo_bgr('coffee')
    out, mask = paint(image, name, rng_for(0, 'a'))
    assert mask.mean() == pytest.approx(CLASSES[name].area, abs=1e-5)
    assert (out != image).any(axis=2)[mask].mean() > 0.5
    if CLASSES[name].area < 1:
        assert not np.array_equal(paint(image, name, rng_for(0, 'b'))[1], mask)


@pytest.mark.parametrize('shape', SHAPES)
def test_regions_are_one_piece_of_their_shape(shape):
    image = skimage_photo_bgr('chelsea')
    for seed in range(5):
        _, mask = paint(image, 'grid', rng_for(seed, shape), shape=shape, area=0.08)
        n, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        assert n == 2, f'{shape} seed {seed}: {n - 1} pieces'
        ys, xs = np.nonzero(mask)
        fill = mask.sum() / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1))
        if shape == 'rectangle':  # the box, up to one partial row or column (or the image's edge)
            assert fill > 0.9
        else:
            assert fill < 0.9


def test_texture_goes_to_flat_areas_and_halos_to_edges():
    image = skimage_photo_bgr('astronaut')
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
    edges = np.hypot(cv2.Sobel(grey, cv2.CV_64F, 1, 0), cv2.Sobel(grey, cv2.CV_64F, 0, 1))
    for seed in SEEDS:
        flat = paint(image, 'texture', rng_for(seed, 'place'))[1]
        edged = paint(image, 'halo', rng_for(seed, 'place'))[1]
        assert edges[flat].mean() < edges.mean() < edges[edged].mean()


@pytest.mark.parametrize('kwargs, match', [
    ({'name': 'sparkle'}, 'unknown artifact class'),
    ({'name': 'grid', 'strength': 61.0}, r'--strength grid=61\.0: .*\[1, 60\]'),
    ({'name': 'halo', 'strength': float('nan')}, '--strength halo=nan'),
    ({'name': 'paste', 'strength': 0.0}, r'\[0\.1, 1\]'),
    ({'name': 'grid', 'area': 0.0}, '--area 0.0'),
    ({'name': 'grid', 'area': 1.5}, '--area 1.5'),
    ({'name': 'grid', 'shape': 'star'}, '--shape star'),
])
def test_bad_controls_are_refused_naming_the_option(kwargs, match):
    kwargs = {'rng': rng_for(0, 'x'), **kwargs}
    with pytest.raises(DesraSettingsError, match=match):
        paint(skimage_photo_bgr('coffee')[:32, :32], **kwargs)


def test_images_that_are_not_bgr_uint8_are_refused():
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        paint(np.zeros((16, 16), np.uint8), 'grid', rng_for(0, 'x'))


def _recalls(name: str) -> list:
    """DeSRA-det (default threshold and morphology, no segmentation) on clean -> painted: recall of the mask."""
    detector = build_detector('desra-no-semantics')
    recalls = []
    for photo in PHOTOS:
        clean = skimage_photo_bgr(photo)
        for seed in SEEDS:
            painted, mask = paint(clean, name, rng_for(seed, photo))
            found = detector.detect(clean, painted).mask
            recalls.append(float((found & mask).sum() / mask.sum()))
    return recalls


@pytest.mark.parametrize('name', VISIBLE)
def test_default_strength_is_visible_to_desra_det(name):
    recalls = _recalls(name)
    assert np.mean(recalls) >= MIN_RECALL, f'{name}: recalls {np.round(recalls, 2)}'


def test_tone_is_a_visible_change_that_desra_det_does_not_see():
    detector = build_detector('desra-no-semantics')
    for photo in PHOTOS:
        clean = skimage_photo_bgr(photo)
        painted, mask = paint(clean, 'tone', rng_for(0, photo))
        assert mask.all()  # its default area is the whole image
        assert np.abs(painted.astype(int) - clean).mean() > 3  # grey levels
        assert detector.detect(clean, painted).mask.mean() < 0.05
