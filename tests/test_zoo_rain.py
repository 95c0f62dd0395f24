"""The rain model (``desra_basicsr.zoo.rain``) and ``desra zoo rain`` through the real command line: streaks of the
stated angle and length, only brightening, seeded per photo, resumable, and bad input refused (exit 2, nothing
written)."""
import json
import os

import cv2
import numpy as np
import pytest
from helpers.photos import jpeg_with_orientation, skimage_photo_bgr, write_quarter_photos
from hypothesis import given, settings
from hypothesis import strategies as st

from desra_basicsr.commands import main
from desra_basicsr.zoo import RainParams
from desra_basicsr.zoo.rain import ANGLE_JITTER, JITTER, ROUND_OFF, draw_params, motion_kernel, rain_image, streak_layer
from desra_basicsr.zoo.synthetic import rng_for


@given(length=st.floats(2, 60), angle=st.floats(-60, 60))
@settings(max_examples=40, deadline=None)
def test_motion_kernel_is_a_normalised_line_of_the_stated_length_and_tilt(length, angle):
    kernel = motion_kernel(length, angle)
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5) and (kernel >= 0).all()
    ys, xs = np.nonzero(kernel)
    weights, centre = kernel[ys, xs], (kernel.shape[0] - 1) / 2
    cov = np.cov(np.stack([xs - centre, ys - centre]), aweights=weights, bias=True)
    variances, axes = np.linalg.eigh(cov)
    # A uniform line of length L has variance L^2 / 12 along itself; bilinear rotation adds less than a pixel.
    assert np.sqrt(12 * variances[-1]) == pytest.approx(length, abs=1.0)
    if length >= 8:  # its direction, from the vertical, leaning right (+): the kernel's principal axis
        vx, vy = axes[:, -1]
        measured = (np.degrees(np.arctan2(vx, -vy)) + 90) % 180 - 90
        assert abs(measured - angle) < 3


@given(seed=st.integers(0, 2**32), density=st.floats(1e-4, 0.05), blur=st.floats(0, 5),
       intensity=st.floats(0.05, 1))
@settings(max_examples=25, deadline=None)
def test_rain_only_brightens_and_the_same_seed_gives_the_same_rain(seed, density, blur, intensity):
    photo = (np.random.default_rng(seed).random((48, 40, 3)) * 255).astype(np.uint8)
    params = RainParams(density=density, blur=blur, intensity=intensity)
    a = rain_image(photo, params, rng_for(seed, 'x'))
    b = rain_image(photo, params, rng_for(seed, 'x'))
    assert a.shape == photo.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert (a >= photo).all()
    layer = streak_layer(photo.shape, params, rng_for(seed, 'x'))
    assert layer.min() >= 0 and layer.max() <= intensity + 1e-6
    assert not ((layer > 0) & (layer < ROUND_OFF * intensity)).any()


def test_no_rain_anywhere_but_the_streaks():
    # One drop in the middle of a black photo: every changed pixel lies on its streak, the rest stays exactly black
    # (without ROUND_OFF, the DFT round-off of the large kernel would brighten the whole photo by a hair).
    photo = np.zeros((200, 200, 3), np.uint8)
    params = RainParams(angle=0, length=41, density=1 / (200 * 200) * 1.5, blur=0, intensity=1)
    for seed in range(50):
        layer = streak_layer(photo.shape, params, rng_for(seed, 'one'))
        if np.count_nonzero(layer) > 0:
            break
    ys, xs = np.nonzero(layer)
    assert np.ptp(xs) <= 2 and np.ptp(ys) >= 30  # a vertical streak about 41 px long, not a haze
    assert np.count_nonzero(layer) < 0.01 * layer.size


def test_each_photo_draws_its_parameters_around_the_runs():
    base = RainParams()
    drawn = [draw_params(base, rng_for(0, f'photo{i}')) for i in range(200)]
    angles = np.array([d.angle for d in drawn])
    assert abs(angles - base.angle).max() <= ANGLE_JITTER and np.ptp(angles) > ANGLE_JITTER
    for name in ('length', 'density', 'blur'):
        ratio = np.array([getattr(d, name) for d in drawn]) / getattr(base, name)
        assert ratio.min() >= 1 - JITTER - 1e-9 and ratio.max() <= 1 + JITTER + 1e-9
    assert max(d.intensity for d in drawn) <= 1.0


@pytest.fixture()
def hr(tmp_path):
    return write_quarter_photos(str(tmp_path / 'hr'))


def _rain(hr, out, *extra):
    return main(['zoo', 'rain', '--hr', hr, '--out', out, *extra])


def test_command_writes_paired_rainy_photos_and_the_summary(hr, tmp_path, capsys):
    out = str(tmp_path / 'rain')
    assert _rain(hr, out, '--angle', '-30', '--density', '0.01', '--seed', '7') == 0
    assert 'zoo rain: 2 done' in capsys.readouterr().out
    assert sorted(os.listdir(os.path.join(out, 'img'))) == sorted(os.listdir(hr))
    with open(os.path.join(out, 'summary.json')) as f:
        summary = json.load(f)
    for name in ('chelsea', 'coffee'):
        clean, rainy = cv2.imread(os.path.join(hr, f'{name}.png')), cv2.imread(os.path.join(out, 'img', f'{name}.png'))
        assert rainy.shape == clean.shape and (rainy >= clean).all()
        changed = (rainy.astype(int) - clean).max(axis=2) > 10
        assert 0.02 < changed.mean() < 0.6
        record = summary['items'][name]
        assert record['target'] == os.path.join(hr, f'{name}.png')
        assert abs(record['rain']['angle'] + 30) <= ANGLE_JITTER
    # Resumed with the same settings: kept; other settings: refused without --overwrite, nothing rewritten.
    assert _rain(hr, out, '--angle', '-30', '--density', '0.01', '--seed', '7') == 0
    assert '0 done, 2 kept' in capsys.readouterr().out
    before = os.path.getmtime(os.path.join(out, 'img', 'coffee.png'))
    assert _rain(hr, out, '--seed', '8') == 2
    assert os.path.getmtime(os.path.join(out, 'img', 'coffee.png')) == before
    assert _rain(hr, out, '--seed', '8', '--overwrite') == 0


@pytest.mark.parametrize('option,value', [('--angle', '61'), ('--length', '1'), ('--density', '0.2'),
                                          ('--blur', '-1'), ('--intensity', '0'), ('--seed', '-1')])
def test_values_out_of_range_exit_2_naming_the_option(hr, tmp_path, capsys, option, value):
    out = tmp_path / 'rain'
    assert _rain(hr, str(out), option, value) == 2
    err = capsys.readouterr().err
    assert option in err and err.startswith('error:')
    assert not out.exists()


def test_an_empty_or_missing_hr_folder_exits_2(tmp_path, capsys):
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert _rain(str(empty), str(tmp_path / 'out')) == 2
    assert str(empty) in capsys.readouterr().err
    assert _rain(str(tmp_path / 'missing'), str(tmp_path / 'out')) == 2
    assert 'missing' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_an_unreadable_photo_fails_that_item_with_exit_1(hr, tmp_path, capsys):
    with open(os.path.join(hr, 'broken.png'), 'wb') as f:
        f.write(b'not a png')
    out = str(tmp_path / 'rain')
    assert _rain(hr, out) == 1
    assert 'broken.png' in capsys.readouterr().err
    assert sorted(os.listdir(os.path.join(out, 'img'))) == ['chelsea.png', 'coffee.png']


def test_a_photo_basicsr_would_turn_fails_that_item_with_exit_1(hr, tmp_path, capsys):
    """A JPEG whose EXIF tag turns it: ``PairedImageDataset`` would load it turned, so no rainy image can pair it."""
    with open(os.path.join(hr, 'turned.jpg'), 'wb') as f:
        f.write(jpeg_with_orientation(skimage_photo_bgr('rocket')[:40, :64], 6))
    out = str(tmp_path / 'rain')
    assert _rain(hr, out) == 1
    assert 'turned.jpg: its EXIF orientation tag turns it' in capsys.readouterr().err
    assert sorted(os.listdir(os.path.join(out, 'img'))) == ['chelsea.png', 'coffee.png']
