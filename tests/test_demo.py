"""``desra demo``: the README's main command, shortened (few fine-tune iterations), as CI runs it."""
import json
import os.path as osp

import pytest

from desra_basicsr.commands import main
from desra_basicsr.demo import DemoSettings
from desra_basicsr.image_io import list_images, read_mask, stem

SHORT_ITERS = 10


@pytest.mark.slow
def test_demo_loop_shortened(tmp_path, capsys):
    out = str(tmp_path / 'demo')
    assert main(['demo', '--out', out, '--iters', str(SHORT_ITERS)]) == 0
    printed = capsys.readouterr().out
    assert 'semantics are OFF' in printed and '--seg-checkpoint' in printed
    assert 'held-out set (never seen by the fine-tune)' in printed and 'fine-tune set, ' in printed
    assert printed.count('removal rate') == 2 and 'detail outside the before-masks' in printed

    defaults = DemoSettings()
    for name, lr in (('heldout', defaults.heldout_input), ('finetune', defaults.finetune_input)):
        photos = [stem(n) for n in list_images(lr)]
        assert len(photos) >= 15
        for folder in ('sr_mse', 'sr_gan', 'masks_before', 'sr_finetuned', 'masks_after'):
            assert [stem(n) for n in list_images(osp.join(out, name, folder))] == photos, (name, folder)
        # The committed GAN-SR model paints local artifacts on most photos of both sets.
        fractions = [read_mask(osp.join(out, name, 'masks_before', f'{p}.png')).mean() for p in photos]
        assert sum(f > 0 for f in fractions) >= len(photos) / 2 and max(fractions) < 0.9
        with open(osp.join(out, f'compare_{name}.json')) as f:
            compared = json.load(f)
        assert compared['summary']['images'] == len(photos) and compared['summary']['n_regions_before'] > 0
    assert [stem(n) for n in list_images(osp.join(out, 'finetune', 'pseudo_gt'))] == [
        stem(n) for n in list_images(defaults.finetune_input)
    ]
    assert osp.isfile(osp.join(out, 'report', 'index.html'))
    with open(osp.join(out, 'options', 'finetune_desra.yml')) as f:
        written = f.read()
    assert f'total_iter: {SHORT_ITERS}' in written and defaults.finetune_input in written
    assert defaults.heldout_input not in written  # the fine-tune never sees the held-out photos
    with open(osp.join(out, 'demo_result.json')) as f:
        result = json.load(f)
    assert 0 < result['heldout']['detail']['std_ratio'] < 2

    # Resume: everything is there, nothing is redone; other settings in the same folder are refused.
    assert main(['demo', '--out', out, '--iters', str(SHORT_ITERS)]) == 0
    printed = capsys.readouterr().out
    assert 'fine-tune:' in printed and 'exists, skipped' in printed
    assert main(['demo', '--out', out, '--iters', str(SHORT_ITERS), '--seed', '1']) == 2
    assert 'other settings (seed)' in capsys.readouterr().err


def test_demo_bad_arguments(tmp_path, capsys):
    assert main(['demo', '--out', str(tmp_path / 'a'), '--gan-weights', str(tmp_path / 'none.pth')]) == 2
    assert 'none.pth: file not found' in capsys.readouterr().err
    assert main(['demo', '--out', str(tmp_path / 'b'), '--iters', '0']) == 2
    assert '--iters 0: must be a finite number in [1, 100000]' in capsys.readouterr().err
    assert main(['demo', '--out', str(tmp_path / 'c'), '--seg-config', 'x.py']) == 2
    assert '--seg-config: needs --seg-checkpoint' in capsys.readouterr().err
    held = DemoSettings().heldout_input
    assert main(['demo', '--out', str(tmp_path / 'd'), '--finetune-input', held]) == 2
    assert 'the held-out images must be ones the fine-tune never sees' in capsys.readouterr().err
    assert not any(osp.exists(tmp_path / k) for k in 'abcd')
