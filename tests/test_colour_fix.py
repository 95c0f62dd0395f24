"""The colour fix from the LR input on real-photo crops: casts removed, textures kept, bad inputs refused."""
import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desra_basicsr.detection.colour_fix import colour_fix
from helpers.photos import paint_noise, skimage_photo_bgr


def _hr_lr(size: int = 128):
    """A real-photo crop and its x4 LR image (area shrink), as the demo's LR photos are made."""
    hr = np.ascontiguousarray(skimage_photo_bgr('chelsea')[160:160 + size, 320:320 + size])
    return hr, cv2.resize(hr, (size // 4, size // 4), interpolation=cv2.INTER_AREA)


def _shifted(img: np.ndarray, bgr) -> np.ndarray:
    return np.clip(img.astype(np.int16) + np.array(bgr, np.int16), 0, 255).astype(np.uint8)


def test_a_colour_cast_is_removed_and_the_texture_kept():
    hr, lr = _hr_lr()
    textured = paint_noise(hr, 16, 16, 40, seed=1)  # a GAN-like texture the fix must keep
    cast = _shifted(textured, (-6, 3, 24))  # red well above the photo, blue below, as a drifting generator
    fixed = colour_fix(cast, lr, 8.0)
    bias_before = np.abs((cast.astype(float) - hr).mean(axis=(0, 1)))
    bias_after = np.abs((fixed.astype(float) - hr).mean(axis=(0, 1)))
    assert bias_before[2] > 20 and (bias_after < 2).all(), (bias_before, bias_after)
    # The painted texture survives: its detail (difference to the photo's smooth version) is the same after the fix.
    detail = lambda img: img.astype(float) - cv2.GaussianBlur(img.astype(np.float32), (0, 0), 2)  # noqa: E731
    change = np.abs(detail(fixed) - detail(textured))[20:52, 20:52]
    assert change.mean() < 1.5 < np.abs(detail(textured)[20:52, 20:52]).mean() / 5, change.mean()
    mse = lambda a: float(((a.astype(float) - hr)**2).mean())  # noqa: E731
    assert mse(fixed) < 0.5 * mse(cast)


@settings(max_examples=25, deadline=None)
@given(st.tuples(*[st.integers(-30, 30)] * 3), st.sampled_from([2.0, 4.0, 8.0, 16.0]))
def test_the_result_does_not_depend_on_the_input_colour_cast(bgr, sigma):
    """Low frequencies come from the LR image alone: any cast (without clipping) gives the same output."""
    hr, lr = _hr_lr(64)
    sr = np.clip(hr, 40, 215).astype(np.uint8)
    np.testing.assert_allclose(colour_fix(_shifted(sr, bgr), lr, sigma), colour_fix(sr, lr, sigma), atol=1)


def test_other_scales_and_sizes():
    hr, _ = _hr_lr(96)
    lr2 = cv2.resize(hr, (48, 48), interpolation=cv2.INTER_AREA)
    fixed = colour_fix(_shifted(hr, (0, 0, 20)), lr2, 4.0)
    assert fixed.shape == hr.shape and abs(float((fixed.astype(float) - hr)[:, :, 2].mean())) < 2
    wide = np.ascontiguousarray(skimage_photo_bgr('chelsea')[:64, :192])
    assert colour_fix(wide, cv2.resize(wide, (48, 16), interpolation=cv2.INTER_AREA), 8.0).shape == wide.shape


@pytest.mark.parametrize('case, message', [
    ('scale', 'is not an integer multiple of its LR input (33x32)'),
    ('axes', 'is not an integer multiple of its LR input (64x32)'),
    ('sigma', 'sigma must be > 0'),
    ('dtype', 'SR image: expected an HxWx3 uint8 image'),
    ('grey', 'LR image: expected an HxWx3 uint8 image'),
])
def test_bad_inputs_are_refused(case, message):
    hr, lr = _hr_lr()
    args = {
        'scale': (hr, np.zeros((32, 33, 3), np.uint8), 8.0),
        'axes': (hr, np.zeros((32, 64, 3), np.uint8), 8.0),
        'sigma': (hr, lr, 0.0),
        'dtype': (hr.astype(np.float32), lr, 8.0),
        'grey': (hr, lr[:, :, 0], 8.0),
    }[case]
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')):
        colour_fix(*args)
