"""``desra demo`` (``desra loop`` with the demo preset): the README's main command, shortened (few fine-tune
iterations), as CI runs it."""
import json
import os.path as osp
import shutil

import pytest

import desra_basicsr.jobs.loop as loop
from desra_basicsr.commands import main
from desra_basicsr.demo import FINETUNE_TEMPLATE, PRETRAINED, DemoSettings
from desra_basicsr.image_io import list_images, read_mask, stem
from desra_basicsr.jobs.core import Interrupted

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
    folders = {'heldout': ('heldout/sr_mse', 'heldout/sr_gan', 'heldout/masks', 'rounds/001/heldout/sr',
                           'rounds/001/heldout/masks'),
               'finetune': ('rounds/001/sr_mse', 'rounds/001/sr_gan', 'rounds/001/masks')}
    for name, lr in (('heldout', defaults.heldout_input), ('finetune', defaults.finetune_input)):
        photos = [stem(n) for n in list_images(lr)]
        assert len(photos) >= 15
        for folder in folders[name]:
            assert [stem(n) for n in list_images(osp.join(out, folder))] == photos, (name, folder)
        # The committed GAN-SR model paints local artifacts on most photos of both sets.
        fractions = [read_mask(osp.join(out, folders[name][2], f'{p}.png')).mean() for p in photos]
        assert sum(f > 0 for f in fractions) >= len(photos) / 2 and max(fractions) < 0.9
    # The fine-tune set, every photo (the demo's recipe), scored with the fine-tuned model.
    pool = [stem(n) for n in list_images(osp.join(out, 'rounds', '001', 'pool_after', 'sr'))]
    assert pool == [f'r001_{stem(n)}' for n in list_images(defaults.finetune_input)]
    for folder in ('heldout', 'pool_after'):
        with open(osp.join(out, 'rounds', '001', folder, 'compare.json')) as f:
            compared = json.load(f)
        assert compared['summary']['images'] >= 15 and compared['summary']['n_regions_before'] > 0
    assert len(list_images(osp.join(out, 'rounds', '001', 'pseudo_gt'))) == len(pool)
    assert osp.isfile(osp.join(out, 'report', 'round_001', 'index.html'))
    with open(osp.join(out, 'rounds', '001', 'finetune', 'options', 'finetune_desra.yml')) as f:
        written = f.read()
    assert f'total_iter: {SHORT_ITERS}' in written and 'rounds/001/train/lr' in written
    assert defaults.heldout_input not in written  # the fine-tune never sees the held-out photos
    with open(osp.join(out, 'demo_result.json')) as f:
        result = json.load(f)
    assert 0 < result['heldout']['detail']['std_ratio'] < 2
    assert sorted(result['finetune']['per_image']) == sorted(stem(n) for n in list_images(defaults.finetune_input))
    with open(osp.join(out, 'models', 'manifest.json')) as f:
        assert [v['version'] for v in json.load(f)['versions']] == ['v0', 'v1']

    # Resume: everything is there, nothing is done again; other settings in the same folder are refused.
    with open(osp.join(out, 'loop_state.json')) as f:
        state = json.load(f)
    assert main(['demo', '--out', out, '--iters', str(SHORT_ITERS)]) == 0
    assert 'removal rate' in capsys.readouterr().out
    with open(osp.join(out, 'loop_state.json')) as f:
        assert json.load(f) == state
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


def test_demo_refuses_a_recipe_or_weights_changed_at_the_same_path(tmp_path, capsys, monkeypatch):
    recipe, weights = str(tmp_path / 'recipe.yml'), str(tmp_path / 'gan.pth')
    shutil.copyfile(FINETUNE_TEMPLATE, recipe)
    shutil.copyfile(osp.join(PRETRAINED, 'demo_gan_x4.pth'), weights)
    out = str(tmp_path / 'demo')
    args = ['demo', '--out', out, '--iters', '2', '--finetune-options', recipe, '--gan-weights', weights]

    def killed(*args):
        raise Interrupted(15)

    with monkeypatch.context() as patched:
        patched.setattr(loop, '_write_template', killed)  # stop once the loop has claimed its folder
        assert main(args) == 143
    state = osp.join(out, 'loop_state.json')
    with open(recipe, 'a') as f:
        f.write('# edited\n')
    assert main(args) == 2
    assert f'{state}: this folder was written with other settings (the contents of template {recipe}); ' in \
        capsys.readouterr().err
    shutil.copyfile(FINETUNE_TEMPLATE, recipe)
    shutil.copyfile(osp.join(PRETRAINED, 'demo_gan_b_x4.pth'), weights)
    assert main(args) == 2
    assert f'(the contents of gan_weights {weights}); ' in capsys.readouterr().err
