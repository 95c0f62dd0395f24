"""End to end on real photos: a GAN-like high-frequency artifact painted into a known smooth region is found."""
import cv2
import numpy as np
import pytest
import torch

from desra_basicsr.detection import DeSRADetector, MorphologyConfig, build_detector
from helpers.photos import make_pair, skimage_photo_bgr

# (photo, smooth region top, left, height, width): the sky of 'rocket', the plain background right of 'astronaut'
CASES = [('rocket', 20, 120, 90, 180), ('astronaut', 288, 441, 58, 58)]


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.mark.parametrize('name, top, left, h, w', CASES)
def test_painted_artifact_is_detected(name, top, left, h, w):
    mse, gan, gt = make_pair(name, top, left, h, w)
    photo = skimage_photo_bgr(name)
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY).astype(float)[top:top + h, left:left + w]
    assert gray.std() < 8, 'the chosen region must be smooth in the photo'
    result = DeSRADetector().detect(mse, gan)
    assert result.mask.shape == gt.shape
    assert iou(result.mask, gt) >= 0.5
    near = cv2.dilate(gt.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    assert (result.mask & ~near).mean() < 0.01, 'little flagged away from the artifact'
    assert result.n_regions >= 1
    # without the artifact, nothing (or almost nothing) is flagged
    clean = DeSRADetector().detect(mse, photo)
    assert clean.mask.mean() < 0.01


def test_ablations_and_methods_run_on_the_photo():
    mse, gan, gt = make_pair(*CASES[0])
    for method in ('desra', 'desra-absolute', 'desra-no-norm', 'desra-no-semantics'):
        result = build_detector(method, morphology=MorphologyConfig()).detect(mse, gan)
        assert result.mask.shape == gt.shape and result.d_map.dtype == np.float32
    assert iou(build_detector('desra-no-semantics', morphology=MorphologyConfig()).detect(mse, gan).mask, gt) >= 0.5
    with pytest.raises(ValueError, match='unknown detection method'):
        build_detector('nope', morphology=MorphologyConfig())


def test_detect_tensors_matches_detect():
    mse, gan, _ = make_pair(*CASES[1])
    mse, gan = mse[:200, :240], gan[:200, :240]
    detector = DeSRADetector(morphology=MorphologyConfig(min_area=500))
    to_t = lambda img: torch.from_numpy(img[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    # generator outputs taken outside torch.no_grad()
    batch = detector.detect_tensors(torch.cat([to_t(mse)] * 2).requires_grad_(), torch.cat([to_t(gan)] * 2))
    single = detector.detect(mse, gan)
    assert len(batch) == 2
    np.testing.assert_array_equal(batch[1].mask, single.mask)
    np.testing.assert_allclose(batch[0].d_map, single.d_map, atol=1e-5)
