"""``desra demo``: the README's main command, shortened (few fine-tune iterations), as CI runs it."""
import json
import os.path as osp

import pytest

from desra_basicsr.commands import main
from desra_basicsr.demo import DemoSettings
from desra_basicsr.image_io import list_images, read_mask

SHORT_ITERS = 10


@pytest.mark.slow
def test_demo_loop_shortened(tmp_path, capsys):
    out = str(tmp_path / 'demo')
    assert main(['demo', '--out', out, '--iters', str(SHORT_ITERS)]) == 0
    printed = capsys.readouterr().out
    assert 'semantics are OFF' in printed and '--seg-checkpoint' in printed
    assert 'removal rate:' in printed and 'addition rate:' in printed

    photos = [osp.splitext(n)[0] for n in list_images(DemoSettings().input)]
    assert len(photos) >= 3
    for folder in ('sr_mse', 'sr_gan', 'masks_before', 'pseudo_gt', 'sr_finetuned', 'masks_after'):
        assert [osp.splitext(n)[0] for n in list_images(osp.join(out, folder))] == photos, folder
    # The committed GAN-SR model paints artifacts on the held-out photos: detection finds some.
    assert sum(read_mask(osp.join(out, 'masks_before', f'{p}.png')).sum() for p in photos) > 0
    with open(osp.join(out, 'compare.json')) as f:
        compared = json.load(f)
    assert compared['summary']['images'] == len(photos)
    assert compared['summary']['n_regions_before'] > 0
    assert 0 <= compared['summary']['removal_rate'] <= 100
    assert osp.isfile(osp.join(out, 'report', 'index.html'))
    with open(osp.join(out, 'options', 'finetune_desra.yml')) as f:
        assert f'total_iter: {SHORT_ITERS}' in f.read()

    # Resume: everything is there, nothing is redone; other settings in the same folder are refused.
    assert main(['demo', '--out', out, '--iters', str(SHORT_ITERS)]) == 0
    printed = capsys.readouterr().out
    assert 'fine-tune:' in printed and 'exists, skipped' in printed
    assert 'sr: 0 done, 3 skipped' in printed
    assert main(['demo', '--out', out, '--iters', str(SHORT_ITERS + 1)]) == 2
    assert 'other settings (iters)' in capsys.readouterr().err


def test_demo_bad_arguments(tmp_path, capsys):
    assert main(['demo', '--out', str(tmp_path / 'a'), '--gan-weights', str(tmp_path / 'none.pth')]) == 2
    assert 'none.pth: file not found' in capsys.readouterr().err
    assert main(['demo', '--out', str(tmp_path / 'b'), '--iters', '0']) == 2
    assert '--iters 0: must be at least 1' in capsys.readouterr().err
    assert main(['demo', '--out', str(tmp_path / 'c'), '--seg-config', 'x.py']) == 2
    assert '--seg-config: needs --seg-checkpoint' in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'a') and not osp.exists(tmp_path / 'b')
