"""``desra loop`` records the SHA-256 of the files it reads: a recipe or weights changed at the same path is refused,
a loop recorded before the digests resumes, and errors about the fine-tune's derived options name the recipe."""
import json
import os.path as osp
import shutil

import pytest
import yaml

import desra_basicsr.jobs.loop as loop
from desra_basicsr.commands import main
from desra_basicsr.jobs.core import Interrupted
from desra_basicsr.jobs.loop_state import DIGESTS, STATE_FILE
from helpers.loop import CLEAN, DEMO_MODELS, PRETRAINED, loop_args, make_batch, stage_records
from helpers.paths import REPO_ROOT

RECIPE = osp.join(REPO_ROOT, 'options', 'demo_finetune_desra.yml')


def error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith('error:')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


def write_recipe(path, lr=1e-5, discriminator='VGGStyleDiscriminator'):
    """The demo's recipe with another learning rate or discriminator type; returns the path."""
    with open(RECIPE) as f:
        opt = yaml.safe_load(f)
    opt['train']['optim_g']['lr'] = lr
    opt['network_d']['type'] = discriminator
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    return str(path)


def with_model(role, weights):
    """:data:`DEMO_MODELS` with other weights for ``--<role>-weights``."""
    args = list(DEMO_MODELS)
    args[args.index(f'--{role}-weights') + 1] = weights
    return args


def stopped_after_the_claim(monkeypatch, args):
    """Run ``args`` until the loop has claimed its folder (the state file is written, no stage ran)."""

    def killed(*args):
        raise Interrupted(15)

    with monkeypatch.context() as patched:
        patched.setattr(loop, '_write_template', killed)
        assert main(args) == 143


def test_a_recipe_changed_at_the_same_path_is_refused(tmp_path, capsys, monkeypatch):
    batch = make_batch(str(tmp_path / 'b1'), CLEAN[:1])
    recipe = write_recipe(tmp_path / 'recipe.yml')
    out = str(tmp_path / 'loop')
    args = loop_args(out, batch, extra=['--template', recipe])
    stopped_after_the_claim(monkeypatch, args)
    write_recipe(recipe, lr=1e-3)
    capsys.readouterr()
    assert main(args) == 2
    line = error_line(capsys)
    assert line == (f'error: {osp.join(out, STATE_FILE)}: this folder was written with other settings (the contents '
                    f'of template {recipe}); run it with the same settings and files to resume, or use another --out')
    assert not osp.exists(osp.join(out, 'options', 'template.yml'))


@pytest.mark.parametrize('role', ['gan', 'mse'])
def test_weights_changed_at_the_same_path_are_refused(tmp_path, capsys, monkeypatch, role):
    batch = make_batch(str(tmp_path / 'b1'), CLEAN[:1])
    weights = str(tmp_path / 'weights.pth')
    shutil.copyfile(osp.join(PRETRAINED, f'demo_{role}_x4.pth'), weights)
    out = str(tmp_path / 'loop')
    args = ['loop', '--input', batch, '--out', out, *with_model(role, weights), '--length', 'fixed', '--iters', '2',
            '--min-pool', '1']
    stopped_after_the_claim(monkeypatch, args)
    shutil.copyfile(osp.join(PRETRAINED, 'demo_gan_b_x4.pth'), weights)  # another model of the same architecture
    capsys.readouterr()
    assert main(args) == 2
    assert f'other settings (the contents of {role}_weights {weights}); ' in error_line(capsys)


def test_a_loop_recorded_before_the_files_digests_resumes_and_records_them(tmp_path):
    batch = make_batch(str(tmp_path / 'clean'), CLEAN)  # no artifact: no fine-tune, a short loop
    out = str(tmp_path / 'loop')
    assert main(loop_args(out, batch)) == 0
    path = osp.join(out, STATE_FILE)
    with open(path) as f:
        state = json.load(f)
    recorded = state['settings'].pop(DIGESTS)
    assert set(recorded) == {'template', 'gan_opt', 'gan_weights', 'netd_weights', 'mse_opt', 'mse_weights'}
    with open(path, 'w') as f:
        json.dump(state, f)  # as an older version wrote it
    assert main(loop_args(out, batch)) == 0
    assert stage_records(out) == state['rounds']  # resumed: nothing done again
    with open(path) as f:
        assert json.load(f)['settings'][DIGESTS] == recorded


def test_an_error_in_the_derived_options_names_the_recipe_and_a_fixed_recipe_is_not_hidden(tmp_path, capsys):
    batch = make_batch(str(tmp_path / 'b1'), ['apple'])
    recipe = write_recipe(tmp_path / 'recipe.yml', discriminator='VGGStyleDiscriminatorr')
    out = str(tmp_path / 'loop')
    args = loop_args(out, batch, extra=['--template', recipe])
    assert main(args) == 2
    line = error_line(capsys)
    assert osp.join(out, 'rounds', '001', 'finetune', 'options', 'finetune_desra.yml') in line
    assert 'VGGStyleDiscriminatorr' in line and line.endswith(f'(fine-tune options derived from {recipe})')
    # Fixed: the folder's copy of the recipe (OUT/options/template.yml) holds the typo, so the folder is refused.
    write_recipe(recipe)
    assert main(args) == 2
    assert f'(the contents of template {recipe})' in error_line(capsys)
