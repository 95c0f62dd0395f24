"""Indicator map D (DeSRA-det steps 1-2): hand-checkable values, valid-mode interior, border rule, numpy == torch."""
import cv2
import numpy as np
import pytest
import torch

from desra_basicsr.detection.indicator import IndicatorConfig, gaussian_kernel_1d, indicator_numpy, indicator_torch
from helpers.photos import skimage_photo_bgr

C = (0.03 * 255)**2


def checkerboard(size: int, base: float, amp: float) -> np.ndarray:
    """HxWx3 float image: base + amp * (-1)^(i+j)."""
    sign = (-1.0)**np.add.outer(np.arange(size), np.arange(size))
    return np.repeat((base + amp * sign)[:, :, None], 3, axis=2)


def checkerboard_variance(amp: float) -> float:
    """Gaussian-weighted variance of a checkerboard: amp^2 * (1 - S^4), S = sum_i g_i (-1)^i (separable window)."""
    g = gaussian_kernel_1d(11, 1.5)
    s = float(np.sum(g * (-1.0)**np.arange(11)))
    return amp * amp * (1 - s**4)


def brute_force_d(y_mse: np.ndarray, y_gan: np.ndarray, numerator: str = 'release') -> np.ndarray:
    """Valid-mode D computed window by window in float64 (what the released code computes, without filters)."""
    g = gaussian_kernel_1d(11, 1.5)
    w2 = np.outer(g, g)
    h, w = y_mse.shape[:2]
    out = np.zeros((h - 10, w - 10))
    for i in range(h - 10):
        for j in range(w - 10):
            total = 0.0
            for c in range(3):
                stds = []
                for img in (y_mse, y_gan):
                    win = img[i:i + 11, j:j + 11, c].astype(np.float64)
                    mu = np.sum(w2 * win)
                    stds.append(np.sqrt(max(np.sum(w2 * win * win) - mu * mu, 0.0)))
                s_m, s_g = stds
                numer = 2 * s_m * s_g + (C if numerator == 'release' else 0)
                total += numer / (s_m * s_m + s_g * s_g + C)
            out[i, j] = total / 3
    return out


def test_gaussian_kernel_matches_opencv():
    np.testing.assert_allclose(gaussian_kernel_1d(11, 1.5), cv2.getGaussianKernel(11, 1.5)[:, 0], rtol=1e-12)


def test_constant_images_give_one():
    a = np.full((32, 40, 3), 17, np.uint8)
    b = np.full((32, 40, 3), 230, np.uint8)
    np.testing.assert_allclose(indicator_numpy(a, b), 1.0, atol=1e-6)
    np.testing.assert_allclose(indicator_numpy(a, a), 1.0, atol=1e-6)


def test_identical_images_give_one():
    img = skimage_photo_bgr('chelsea')[:64, :64]
    np.testing.assert_allclose(indicator_numpy(img, img), 1.0, atol=1e-6)


@pytest.mark.parametrize('numerator', ['release', 'paper'])
def test_checkerboard_against_flat_known_variance(numerator):
    amp = 40.0
    gan = checkerboard(48, 128, amp)
    mse = np.full_like(gan, 128)
    var = checkerboard_variance(amp)
    expected = (C if numerator == 'release' else 0) / (var + C)
    d = indicator_numpy(mse, gan, IndicatorConfig(numerator=numerator))
    # interior and, since the reflect-101 mirror of a checkerboard is the same checkerboard, the border too
    np.testing.assert_allclose(d, expected, atol=1e-6)


def test_two_checkerboards_known_value():
    gan, mse = checkerboard(32, 128, 50.0), checkerboard(32, 128, 10.0)
    s_g, s_m = np.sqrt(checkerboard_variance(50.0)), np.sqrt(checkerboard_variance(10.0))
    expected = (2 * s_g * s_m + C) / (s_g**2 + s_m**2 + C)
    np.testing.assert_allclose(indicator_numpy(mse, gan), expected, atol=1e-6)


def test_ablation_modes_known_values():
    amp = 30.0
    gan = checkerboard(32, 100, amp)
    mse = np.full_like(gan, 100)
    var = checkerboard_variance(amp)
    d_abs = indicator_numpy(mse, gan, IndicatorConfig(mode='absolute'))
    np.testing.assert_allclose(d_abs, 1 - var / 127.5**2, atol=1e-6)
    d_nonorm = indicator_numpy(mse, gan, IndicatorConfig(mode='no_norm'))
    np.testing.assert_allclose(d_nonorm, max(0.0, 1 - var / C), atol=1e-6)
    small = checkerboard(32, 100, 3.0)
    np.testing.assert_allclose(
        indicator_numpy(mse, small, IndicatorConfig(mode='no_norm')), 1 - checkerboard_variance(3.0) / C, atol=1e-6)


def test_interior_equals_valid_mode_brute_force_and_border_is_reflect101():
    rng = np.random.default_rng(1)
    photo = skimage_photo_bgr('coffee')[100:124, 200:226]
    gan = np.clip(photo.astype(int) + rng.integers(-40, 41, photo.shape), 0, 255).astype(np.uint8)
    d = indicator_numpy(photo, gan)
    assert d.shape == photo.shape[:2] and d.dtype == np.float32
    np.testing.assert_allclose(d[5:-5, 5:-5], brute_force_d(photo, gan), atol=1e-6)
    pad = lambda img: np.pad(img, ((5, 5), (5, 5), (0, 0)), mode='reflect')  # noqa: E731  (reflect-101)
    np.testing.assert_allclose(d, brute_force_d(pad(photo), pad(gan)), atol=1e-6)


def test_row_strips_and_threads_do_not_change_the_map():
    # 150 rows = two 64-row strips and a partial one: the strip halos must reproduce the window-by-window result at
    # the strip boundaries, and the strips computed in parallel must give the same bits as one thread.
    rng = np.random.default_rng(2)
    photo = skimage_photo_bgr('rocket')[200:350, 300:336]
    gan = np.clip(photo.astype(int) + rng.integers(-30, 31, photo.shape), 0, 255).astype(np.uint8)
    one = indicator_numpy(photo, gan, num_threads=1)
    np.testing.assert_array_equal(indicator_numpy(photo, gan, num_threads=3), one)
    np.testing.assert_array_equal(indicator_numpy(photo, gan), one)
    np.testing.assert_allclose(one[5:-5, 5:-5], brute_force_d(photo, gan), atol=1e-6)


def test_symmetric_in_its_arguments():
    a = skimage_photo_bgr('astronaut')[:40, :50]
    b = cv2.GaussianBlur(a, (5, 5), 2)
    np.testing.assert_allclose(indicator_numpy(a, b), indicator_numpy(b, a), atol=1e-7)


def test_numpy_equals_torch_batched_and_data_range():
    photos = [skimage_photo_bgr(n)[:70, :90] for n in ('astronaut', 'chelsea')]
    gans = [np.clip(p.astype(int) * 3 - 200, 0, 255).astype(np.uint8) for p in photos]
    expected = np.stack([indicator_numpy(m, g) for m, g in zip(photos, gans)])
    np.testing.assert_allclose(indicator_numpy(np.stack(photos), np.stack(gans)), expected, atol=1e-7)
    to_t = lambda imgs: torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2)  # noqa: E731
    out = indicator_torch(to_t(photos), to_t(gans))
    assert out.shape == (2, 70, 90) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)
    unit = indicator_torch(to_t(photos).double() / 255, to_t(gans).double() / 255, data_range=1.0)
    np.testing.assert_allclose(unit.numpy(), expected, atol=1e-6)
    single = indicator_torch(to_t(photos)[0], to_t(gans)[0], IndicatorConfig(numerator='paper', mode='absolute'))
    np.testing.assert_allclose(
        single.numpy(), indicator_numpy(photos[0], gans[0], IndicatorConfig(numerator='paper', mode='absolute')),
        atol=1e-6)


@pytest.mark.parametrize('window', [1, 3, 5])
def test_small_windows_numpy_equals_torch(window):
    """Every odd window the settings accept runs on both paths (window 1: a zero-pixel halo) and they agree."""
    photo = skimage_photo_bgr('chelsea')[:30, :40]
    gan = cv2.GaussianBlur(photo, (5, 5), 2)
    cfg = IndicatorConfig(window=window)
    expected = indicator_numpy(photo, gan, cfg)
    assert expected.shape == (30, 40)
    to_t = lambda img: torch.from_numpy(img).permute(2, 0, 1)  # noqa: E731
    np.testing.assert_allclose(indicator_torch(to_t(photo), to_t(gan), cfg).numpy(), expected, atol=1e-6)


def test_float64_avoids_cancellation_in_bright_flat_regions():
    # Nearly flat bright GAN region beside a textured MSE one: float32 moments would be off by ~1e-3 here.
    rng = np.random.default_rng(0)
    gan = np.full((64, 64, 3), 250, np.uint8)
    gan[::2, ::2] = 251
    mse = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    d = indicator_numpy(mse, gan)
    np.testing.assert_allclose(d[5:-5, 5:-5], brute_force_d(mse, gan)[:, :], atol=1e-6)


def test_bad_inputs():
    a = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match='shapes differ'):
        indicator_numpy(a, np.zeros((20, 21, 3), np.uint8))
    with pytest.raises(ValueError, match='smaller than the 11x11'):
        indicator_numpy(a[:10], a[:10])
    with pytest.raises(ValueError, match='num_threads'):
        indicator_numpy(a, a, num_threads=0)
    with pytest.raises(ValueError, match='smaller than the 11x11'):
        indicator_torch(torch.zeros(1, 3, 8, 30), torch.zeros(1, 3, 8, 30))
    with pytest.raises(ValueError, match='odd'):
        IndicatorConfig(window=10)
    with pytest.raises(ValueError, match='numerator'):
        IndicatorConfig(numerator='both')
    with pytest.raises(ValueError, match='mode'):
        IndicatorConfig(mode='ldl')
