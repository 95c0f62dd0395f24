"""``benchmarks/bench_localizer_speed.py`` on one tiny photo: every row is timed and the localiser's rate is compared
with each DeSRA-det's."""
import json

import cv2
import numpy as np
import pytest

from benchmarks import bench_localizer_speed as bench
from helpers.photos import skimage_photo_bgr


def test_every_localiser_is_timed_against_both_desra_det_rows(tmp_path):
    lr = tmp_path / 'lr'
    lr.mkdir()
    cv2.imwrite(str(lr / 'coffee.png'), np.ascontiguousarray(skimage_photo_bgr('coffee')[:16, :20]))
    work = tmp_path / 'work'
    trained = bench.random_localizer('segformer-mit-b0', 32, str(lr), str(tmp_path / 'trained'))
    results = bench.main(['--lr', str(lr), '--archs', 'fast-scnn', '--localizer', 'mine', *trained, '--crop-size',
                          '48', '--repeat', '1', '--work', str(work)])
    assert json.loads((work / 'results.json').read_text()) == results
    rows = results['rows']
    desra_det = [label for label, row in rows.items() if row['kind'] == 'desra_det']
    assert desra_det == ['DeSRA-det, demo MSE-SR (SRVGGNetCompact)', 'DeSRA-det, RRDBNet 23 blocks (random weights)']
    assert list(rows)[2:] == ['localiser fast-scnn (random weights, 48-pixel windows)', 'localiser mine']
    for label, row in rows.items():
        assert row['seconds_per_image'] > 0 and row['images_per_minute'] == pytest.approx(60 / row['seconds_per_image'])
        if row['kind'] == 'localizer':
            assert set(row['ratio']) == set(desra_det)
            for base in desra_det:
                assert row['ratio'][base] == pytest.approx(row['images_per_minute'] / rows[base]['images_per_minute'])


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(SystemExit, match='no images'):
        bench.main(['--lr', str(tmp_path), '--archs', 'fast-scnn', '--work', str(tmp_path / 'work')])
    for bad in (['--images', '-1'], ['--repeat', '0']):
        with pytest.raises(SystemExit, match='give --images >= 0 and --repeat >= 1'):
            bench.main(['--lr', str(tmp_path), *bad, '--work', str(tmp_path / 'work')])
