"""The zoo's sample readers: synthetic-artifact folders (read from their summary) and generator folders."""
import json
import os

import cv2
import numpy as np
import pytest

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.jobs.zoo_samples import (SYNTH_COMMAND, ZooSample, generator_samples, synthetic_image_path,
                                            synthetic_mask_path, synthetic_samples)


def _write(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.zeros((8, 8, 3), np.uint8))


def test_synthetic_samples_read_finished_items_with_class_and_target(tmp_path):
    root, hr = str(tmp_path / 'synth'), str(tmp_path / 'hr.png')
    items = {
        'b__grid__0': {'status': 'done', 'class': 'grid', 'target': hr},
        'a__halo__0': {'status': 'done', 'class': 'halo', 'target': hr},
        'c__grid__1': {'status': 'error', 'message': 'x: unreadable'},
    }
    os.makedirs(root)
    with open(os.path.join(root, 'summary.json'), 'w') as f:
        json.dump({'meta': {'command': SYNTH_COMMAND}, 'items': items}, f)
    samples = synthetic_samples(root)
    assert samples == [
        ZooSample(synthetic_image_path(root, 'a__halo__0'), synthetic_mask_path(root, 'a__halo__0'), hr, 'halo'),
        ZooSample(synthetic_image_path(root, 'b__grid__0'), synthetic_mask_path(root, 'b__grid__0'), hr, 'grid'),
    ]


@pytest.mark.parametrize('summary', [None, {'meta': {'command': 'detect'}, 'items': {}},
                                     {'meta': {'command': SYNTH_COMMAND}, 'items': {}}])
def test_synthetic_samples_refuse_other_folders(tmp_path, summary):
    if summary is not None:
        (tmp_path / 'summary.json').write_text(json.dumps(summary))
    with pytest.raises(DesraSettingsError, match=str(tmp_path)):
        synthetic_samples(str(tmp_path))


def test_generator_samples_pair_outputs_masks_and_hr_by_stem(tmp_path):
    for folder, stems in (('sr', 'ab'), ('masks', 'ab'), ('hr', 'abc')):
        for stem in stems:
            _write(str(tmp_path / folder / f'{stem}.png'))
    samples = generator_samples(str(tmp_path / 'sr'), str(tmp_path / 'masks'), str(tmp_path / 'hr'), 'gan')
    assert [os.path.basename(s.target) for s in samples] == ['a.png', 'b.png']
    assert {s.cls for s in samples} == {'gan'}
    _write(str(tmp_path / 'other' / 'z.png'))
    with pytest.raises(DesraSettingsError, match='no file stem'):
        generator_samples(str(tmp_path / 'other'), str(tmp_path / 'masks'), str(tmp_path / 'hr'), 'gan')
