"""Class-weight tables (DeSRA-det step 3): the shipped release table, user formats, validation errors."""
import json

import numpy as np
import pytest

from desra_basicsr.detection.class_weights import ADE20K_CLASSES, DEFAULT_TABLE, apply_class_weights, load_class_weights
from desra_basicsr.errors import DesraInputError


def by_name(table):
    """The table's weights by class name."""
    return dict(zip(table.names, table.weights.tolist()))


def test_default_table_is_the_release():
    table = load_class_weights()
    assert table.source == DEFAULT_TABLE and table.num_classes == 150
    weights = by_name(table)
    assert weights['sky'] == 1.0
    assert weights['building'] == pytest.approx(1.25)
    assert weights['tree'] == pytest.approx(4 / 3)
    assert weights['bulletin board'] == pytest.approx(20 / 9)
    # 'bed ' carries a trailing space in mmseg; label 7 is 'bed' here
    assert table.names[7] == 'bed' and table.weights[7] == 1.0
    with open(DEFAULT_TABLE) as f:
        body = [line.strip() for line in f if line.strip() and not line.startswith('#')]
    assert len(body) == 150


def test_release_text_format_with_comments(tmp_path):
    lines = [f'{name}--{3 if name == "wall" else 0}  # comment' for name in ADE20K_CLASSES]
    path = tmp_path / 'table.txt'
    path.write_text('# my table\n\n' + '\n'.join(lines))
    table = load_class_weights(str(path))
    assert by_name(table)['wall'] == pytest.approx(20 / 17) and by_name(table)['sky'] == 1.0


@pytest.mark.parametrize('ext', ['yml', 'json'])
def test_mapping_formats(tmp_path, ext):
    weights = {name: 1.0 for name in ADE20K_CLASSES}
    weights['tree'] = 1.5
    path = tmp_path / f'table.{ext}'
    if ext == 'json':
        path.write_text(json.dumps(weights))
    else:
        path.write_text('\n'.join(f'"{k}": {v}' for k, v in weights.items()))
    table = load_class_weights(str(path))
    assert by_name(table)['tree'] == 1.5 and table.weights.dtype == np.float32


def write_release(tmp_path, lines):
    path = tmp_path / 'bad.txt'
    path.write_text('\n'.join(lines))
    return str(path)


def test_validation_errors_name_the_file(tmp_path):
    good = [f'{name}--0' for name in ADE20K_CLASSES]
    cases = {
        'unknown class names': good + ['spaceship--1'],
        'classes missing': good[1:],
        'not an integer': good[:-1] + ['flag--x'],
        'must be in': good[:-1] + ['flag--20'],
        'appears twice': good + ['sky--1'],
        'expected "class name--idx"': good + ['just a name'],
    }
    for message, lines in cases.items():
        path = write_release(tmp_path, lines)
        with pytest.raises(DesraInputError, match=message) as err:
            load_class_weights(path)
        assert str(err.value).startswith(path)
    bad_json = tmp_path / 'bad.json'
    bad_json.write_text(json.dumps({**{n: 1 for n in ADE20K_CLASSES}, 'sky': 'high'}))
    with pytest.raises(DesraInputError, match='not a number'):
        load_class_weights(str(bad_json))
    bad_json.write_text(json.dumps({**{n: 1 for n in ADE20K_CLASSES}, 'sky': 0}))
    with pytest.raises(DesraInputError, match='positive'):
        load_class_weights(str(bad_json))
    bad_json.write_text('[1, 2]')
    with pytest.raises(DesraInputError, match='mapping'):
        load_class_weights(str(bad_json))
    bad_json.write_text('{"sky": ')
    with pytest.raises(DesraInputError, match='cannot parse'):
        load_class_weights(str(bad_json))
    with pytest.raises(DesraInputError, match='not found'):
        load_class_weights(str(tmp_path / 'absent.txt'))


def test_apply_class_weights_multiplies_and_clips():
    table = load_class_weights()
    d = np.array([[0.6, 0.6], [0.9, 0.5]], np.float32)
    labels = np.array([[2, 1], [4, 4]])  # sky, building, tree
    out = apply_class_weights(d, labels, table)
    np.testing.assert_allclose(out, [[0.6, 0.75], [1.0, 0.5 * 4 / 3]], rtol=1e-6)
    with pytest.raises(ValueError, match='labels must be'):
        apply_class_weights(d, np.full((2, 2), 150), table)
    with pytest.raises(ValueError, match='differ in size'):
        apply_class_weights(d, labels[:1], table)
