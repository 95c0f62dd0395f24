"""Per-class calibration: streaming histograms with known percentiles, the output tables, `desra calibrate`."""
import os.path as osp

import numpy as np
import pytest
import yaml

from desra_basicsr.commands import main
from desra_basicsr.detection.class_weights import ADE20K_CLASSES, load_class_weights
from desra_basicsr.detection.indicator import indicator_numpy
from desra_basicsr.evaluation.calibration import (ClassHistogram, accumulate, released_index, weights_from_percentiles,
                                                  write_released_table, write_weights_yaml)
from desra_basicsr.image_io import read_image, write_image


def test_histogram_percentiles_known_values():
    hist = ClassHistogram(3)
    # Class 0: D uniform on [0.2, 0.6] -> 85th percentile 0.2 + 0.85 * 0.4 = 0.54.
    # Class 1: 1000 copies each of 0.3 and 0.9 (85 % of the mass at or below 0.9, 50 % at 0.3) -> 0.9.
    # Class 2: never seen -> NaN.
    uniform = np.linspace(0.2, 0.6, 40001)
    labels = np.zeros(uniform.size, int)
    two = np.repeat([0.3, 0.9], 1000)
    # Fed in two "images" to check accumulation.
    hist.add(uniform[None, :20000], labels[None, :20000])
    hist.add(
        np.concatenate([uniform[20000:], two])[None],
        np.concatenate([labels[20000:], np.ones(two.size, int)])[None])
    p85 = hist.percentile(85)
    assert p85[0] == pytest.approx(0.54, abs=1e-4)
    assert p85[1] == pytest.approx(0.9, abs=1e-4)
    assert np.isnan(p85[2])
    assert hist.percentile(50)[1] == pytest.approx(0.3, abs=1e-4)
    assert list(hist.pixels()) == [40001, 2000, 0]
    # Memory is the fixed counts array, whatever the number of pixels added.
    assert hist.counts.shape == (3, 10000)


def test_histogram_rejects_bad_labels():
    hist = ClassHistogram(2)
    with pytest.raises(ValueError, match='labels must lie'):
        hist.add(np.zeros((2, 2)), np.full((2, 2), 2))
    with pytest.raises(ValueError, match='differ in shape'):
        hist.add(np.zeros((2, 2)), np.zeros((2, 3), int))
    for bad in (np.nan, np.inf):  # would land in bin 0 and pull the percentiles down
        with pytest.raises(ValueError, match='NaN or infinite'):
            hist.add(np.array([[0.95, bad]]))
    assert hist.pixels().sum() == 0


@pytest.mark.parametrize('a, idx', [(1.0, 0), (0.96, 0), (0.95, 0), (0.949, 1), (0.75, 4), (0.7, 5), (0.01, 19)])
def test_released_index(a, idx):
    # idx counts 20 equal bins of [0, 1] from the top; A reads back as the bin's upper edge (20 - idx) / 20.
    assert released_index(a) == idx


def test_tables_load_in_the_detector(tmp_path):
    names = ADE20K_CLASSES
    percentiles = np.full(len(names), np.nan)
    percentiles[names.index('sky')] = 0.97
    percentiles[names.index('tree')] = 0.74
    percentiles[names.index('building')] = 0.0  # floored at 1/20: weight 20
    weights, unseen = weights_from_percentiles(percentiles)
    assert len(unseen) == len(names) - 3
    write_weights_yaml(str(tmp_path / 'w.yml'), names, weights, ['test header'])
    text = (tmp_path / 'w.yml').read_text()
    assert text.startswith('# test header\n') and isinstance(yaml.safe_load(text), dict)
    table = load_class_weights(str(tmp_path / 'w.yml'))
    table_weights = dict(zip(table.names, table.weights.tolist()))
    assert table_weights['sky'] == pytest.approx(1 / 0.97)
    assert table_weights['tree'] == pytest.approx(1 / 0.74)
    assert table_weights['building'] == pytest.approx(20.0)
    assert table_weights['wall'] == 1.0
    write_released_table(str(tmp_path / 'w.txt'), names, percentiles, ['released'])
    released = load_class_weights(str(tmp_path / 'w.txt'))
    released_weights = dict(zip(released.names, released.weights.tolist()))
    # sky 0.97 -> idx 0 -> weight 1; tree 0.74 -> bin [0.70, 0.75) -> idx 5 -> weight 20 / 15.
    assert released_weights['sky'] == 1.0
    assert released_weights['tree'] == pytest.approx(20 / 15)


def make_pairs(root, count=3):
    rng = np.random.default_rng(0)
    for i in range(count):
        base = rng.integers(60, 200, (40, 48, 3)).astype(np.float32)
        mse = np.clip(base, 0, 255).astype(np.uint8)
        gan = mse.astype(np.int16)
        gan[:, :24] += rng.integers(-50, 51, (40, 24, 3)).astype(np.int16)  # noisier left half
        write_image(osp.join(root, 'mse', f'{i}.png'), mse)
        write_image(osp.join(root, 'gan', f'{i}.png'), np.clip(gan, 0, 255).astype(np.uint8))
    return osp.join(root, 'mse'), osp.join(root, 'gan')


def test_accumulate_with_a_segmenter_matches_np_percentile(tmp_path):
    mse_dir, gan_dir = make_pairs(str(tmp_path))
    pairs = [(osp.join(mse_dir, f'{i}.png'), osp.join(gan_dir, f'{i}.png')) for i in range(3)]
    halves = np.zeros((40, 48), int)
    halves[:, 24:] = 1
    hist = accumulate(pairs, num_classes=2, segment=lambda y_mse, y_gan: halves)
    maps = [indicator_numpy(read_image(m), read_image(g)) for m, g in pairs]
    for k in (0, 1):
        values = np.concatenate([d[halves == k] for d in maps])
        assert hist.percentile(85)[k] == pytest.approx(np.percentile(values, 85), abs=2e-3)
    assert hist.percentile(85)[0] < hist.percentile(85)[1]


def test_calibrate_command_without_segmenter(tmp_path, capsys):
    mse_dir, gan_dir = make_pairs(str(tmp_path))
    out, released = tmp_path / 'weights.yml', tmp_path / 'weights.txt'
    assert main([
        'calibrate', '--mse', mse_dir, '--gan', gan_dir, '--percentile', '85', '--out',
        str(out), '--released-format',
        str(released)
    ]) == 0
    captured = capsys.readouterr()
    assert 'every pixel falls in one class' in captured.err
    values = np.concatenate([
        indicator_numpy(read_image(osp.join(mse_dir, f'{i}.png')), read_image(osp.join(gan_dir, f'{i}.png'))).ravel()
        for i in range(3)
    ])
    expected = 1 / np.percentile(values, 85)
    table = load_class_weights(str(out))
    assert np.allclose(table.weights, table.weights[0])  # one class: every weight equal
    assert table.weights[0] == pytest.approx(expected, rel=5e-3)
    assert load_class_weights(str(released)).num_classes == 150
    assert 'none (all pixels in one class' in out.read_text()


def test_calibrate_command_errors(tmp_path, capsys):
    mse_dir, gan_dir = make_pairs(str(tmp_path))
    assert main(['calibrate', '--mse', mse_dir, '--gan', gan_dir, '--out', str(tmp_path / 'w.txt')]) == 2
    assert '.yml' in capsys.readouterr().err
    write_image(osp.join(gan_dir, 'extra.png'), np.zeros((40, 48, 3), np.uint8))
    assert main(['calibrate', '--mse', mse_dir, '--gan', gan_dir, '--out', str(tmp_path / 'w.yml')]) == 1
    assert 'lack a partner' in capsys.readouterr().err
    assert not (tmp_path / 'w.yml').exists()
