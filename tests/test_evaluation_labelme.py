"""labelme JSON -> ground-truth masks, with fixtures written here, and the BasicSR mask metrics."""
import json

import numpy as np
import pytest

from desra_basicsr.commands import main
from desra_basicsr.errors import DesraInputError
from desra_basicsr.evaluation.labelme import labelme_to_mask
from desra_basicsr.image_io import read_mask


def write_labelme(path, shapes, height=6, width=8):
    data = {
        'version': '5.2.1',
        'flags': {},
        'shapes': shapes,
        'imagePath': 'x.png',
        'imageData': None,
        'imageHeight': height,
        'imageWidth': width
    }
    path.write_text(json.dumps(data))
    return str(path)


def shape(label, kind, points):
    return {'label': label, 'points': points, 'group_id': None, 'shape_type': kind, 'flags': {}}


def test_polygon_rectangle_union_and_label_filter(tmp_path):
    path = write_labelme(
        tmp_path / 'a.json',
        [
            # Axis-aligned square polygon: rows 1..4, cols 1..4 (boundary included) = 16 pixels.
            shape('artifact', 'polygon', [[1, 1], [4, 1], [4, 4], [1, 4]]),
            # Rectangle given bottom-right first: cols 6..7, rows 0..2 = 6 pixels.
            shape('artifact', 'rectangle', [[7.2, 2.4], [5.8, -0.3]]),
            # A differently labelled polygon (triangle) overlapping the square.
            shape('other', 'polygon', [[0, 0], [2, 0], [0, 2]]),
        ])
    mask = labelme_to_mask(path, ['artifact'])
    assert mask.shape == (6, 8) and mask.dtype == bool
    expected = np.zeros((6, 8), bool)
    expected[1:5, 1:5] = True
    expected[0:3, 6:8] = True
    np.testing.assert_array_equal(mask, expected)
    # Without the filter the triangle adds (0,0), (0,1), (0,2), (1,0), (2,0) beyond the square: 22 + 5 = 27.
    assert labelme_to_mask(path).sum() == 22 + 5


def test_circle_and_points_outside_are_clipped(tmp_path):
    path = write_labelme(
        tmp_path / 'c.json',
        [shape('a', 'circle', [[0, 0], [1, 0]]),
         shape('a', 'polygon', [[6, 4], [20, 4], [20, 20], [6, 20]])])
    mask = labelme_to_mask(path)
    # Disc of radius 1 at the corner: (0,0), (0,1), (1,0) inside the image. Polygon clipped: rows 4..5, cols 6..7.
    assert mask[:2, :2].sum() == 3 and mask[4:, 6:].all() and mask.sum() == 3 + 4


@pytest.mark.parametrize('content, message', [
    ('{not json', 'not a readable labelme JSON'),
    (json.dumps({'shapes': []}), 'imageHeight'),
    (json.dumps({
        'imageHeight': 4,
        'imageWidth': 4,
        'shapes': [shape('a', 'line', [[0, 0], [3, 3]])]
    }), "type 'line'"),
    (json.dumps({
        'imageHeight': 4,
        'imageWidth': 4,
        'shapes': [shape('a', 'polygon', [[0, 0], [3, 3]])]
    }), 'needs at least 3 points'),
    (json.dumps({
        'imageHeight': 4,
        'imageWidth': 4,
        'shapes': [shape('a', 'rectangle', [[0, 'x'], [3, 3]])]
    }), 'no valid "points"'),
])
def test_bad_files_name_the_file(tmp_path, content, message):
    path = tmp_path / 'bad.json'
    path.write_text(content)
    with pytest.raises(DesraInputError, match=message) as info:
        labelme_to_mask(str(path))
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize('kind, points, message', [
    ('polygon', [[0, 0], [4294967297, 0], [0, 3]], r'\[4.29497e\+09, 0\], more than 1048576 pixels outside the 8x6'),
    ('rectangle', [[0, 0], [1e30, 1e30]], r'\[1e\+30, 1e\+30\], more than 1048576 pixels outside'),
    ('circle', [[0, 0], [1e12, 0]], r'\[1e\+12, 0\], more than 1048576 pixels outside'),
    ('polygon', [[0, 0], [-1048577, 0], [0, 3]], r'\[-1.04858e\+06, 0\], more than'),
    ('rectangle', [[0, 0], [float('nan'), 1]], 'has a coordinate that is not a finite number'),
    ('circle', [[0, 0], [float('inf'), 1]], 'has a coordinate that is not a finite number'),
], ids=['2**32+1', '1e30', 'radius-1e12', 'just-beyond', 'nan', 'inf'])
def test_coordinates_far_outside_the_image_are_refused_naming_the_shape(tmp_path, kind, points, message):
    path = write_labelme(tmp_path / 'far.json', [shape('a', 'rectangle', [[0, 0], [1, 1]]), shape('a', kind, points)])
    with pytest.raises(DesraInputError, match=message) as info:
        labelme_to_mask(path)
    assert str(info.value).startswith(f'{path}: shape 1 ({kind}) has ')


def test_points_up_to_the_margin_outside_the_image_are_clipped(tmp_path):
    far = 2**20
    # A triangle below the diagonal y = x: the pixels with y >= x.
    path = write_labelme(tmp_path / 'm.json', [shape('a', 'polygon', [[-far, -far], [far, far], [-far, far]])])
    np.testing.assert_array_equal(labelme_to_mask(path), np.tril(np.ones((6, 8), bool)))
    for kind, points in (('rectangle', [[-far, -far], [8 + far, 6 + far]]), ('circle', [[-far, 0], [far, 0]])):
        assert labelme_to_mask(write_labelme(tmp_path / f'{kind}.json', [shape('a', kind, points)])).all()


def test_line_shape_excluded_by_label_filter(tmp_path):
    path = write_labelme(tmp_path / 'l.json',
                         [shape('note', 'line', [[0, 0], [3, 3]]),
                          shape('artifact', 'rectangle', [[0, 0], [1, 1]])])
    assert labelme_to_mask(path, ['artifact']).sum() == 4


def test_labelme2mask_command(tmp_path, capsys):
    src, out = tmp_path / 'json', tmp_path / 'masks'
    src.mkdir()
    write_labelme(src / 'img1.json', [shape('artifact', 'rectangle', [[0, 0], [2, 1]])], height=5, width=7)
    write_labelme(src / 'img2.json', [shape('other', 'rectangle', [[0, 0], [2, 1]])], height=3, width=3)
    (src / 'broken.json').write_text('[]')
    assert main(['labelme2mask', '--json', str(src), '--out', str(out), '--label', 'artifact']) == 1
    captured = capsys.readouterr()
    assert captured.err.count('broken.json') == 1 and '1 mask(s) without any matching shape' in captured.out
    m1, m2 = read_mask(str(out / 'img1.png')), read_mask(str(out / 'img2.png'))
    assert m1.shape == (5, 7) and m1.sum() == 6 and m2.shape == (3, 3) and not m2.any()
    assert not (out / 'broken.png').exists()
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['counts'] == {'done': 2, 'error': 1}
    assert summary['items']['img1']['pixels'] == 6
    # Resume: existing masks are kept, the broken file still fails.
    assert main(['labelme2mask', '--json', str(src), '--out', str(out), '--label', 'artifact']) == 1
    captured = capsys.readouterr()
    assert '0 done, 2 kept from an earlier run, 1 failed' in captured.out and captured.err.count('broken.json') == 1


def test_basicsr_metric_registry_entries():
    from basicsr.metrics import calculate_metric

    import desra_basicsr  # noqa: F401  (registers the metrics)

    pred = np.zeros((8, 8, 3), np.uint8)
    pred[0:2, 0:2] = 255
    gt = np.zeros((8, 8, 3), np.uint8)
    gt[0:2, 0:4] = 255
    data = {'img': pred, 'img2': gt}
    assert calculate_metric(data, {'type': 'calculate_mask_iou'}) == pytest.approx(50.0)
    assert calculate_metric(data, {'type': 'calculate_mask_precision', 'p': 0.5}) == 1.0
    assert calculate_metric(data, {'type': 'calculate_mask_recall', 'p': 0.5}) == 1.0
    assert calculate_metric(data, {'type': 'calculate_mask_recall', 'p': 0.51}) == 0.0
    # crop_border 2 removes every marked pixel: both empty -> 100.
    assert calculate_metric(data, {'type': 'calculate_mask_iou', 'crop_border': 2}) == 100.0
