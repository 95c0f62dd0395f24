"""Bad inputs of ``desra loop`` through the command line: refused before any work, or said so and no fine-tune."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import desra_basicsr.jobs.loop as loop
from desra_basicsr.commands import main
from desra_basicsr.jobs.core import Interrupted
from helpers.loop import CLEAN, DEMO_MODELS, PRETRAINED, loop_args, make_batch, stage_records
from helpers.paths import REPO_ROOT


def error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith('error:')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


def test_an_empty_batch_is_refused_before_any_work(tmp_path, capsys):
    good = make_batch(str(tmp_path / 'b1'), ['apple'])
    empty = str(tmp_path / 'empty')
    os.makedirs(empty)
    out = tmp_path / 'loop'
    assert main(loop_args(str(out), good, empty)) == 2
    line = error_line(capsys)
    assert empty in line and 'holds no image' in line
    assert not out.exists()


def test_an_mse_model_of_another_scale_is_refused(tmp_path, capsys):
    batch = make_batch(str(tmp_path / 'b1'), ['apple'])
    gan_only = DEMO_MODELS[:6]
    args = ['loop', '--input', batch, '--out', str(tmp_path / 'loop'), *gan_only, '--mse-arch', 'SRVGGNetCompact',
            '--mse-arch-opt', 'upscale=2', 'num_feat=32', 'num_conv=8', '--mse-weights',
            osp.join(PRETRAINED, 'demo_mse_x4.pth')]
    assert main(args) == 2
    line = error_line(capsys)
    assert '--mse-arch' in line and 'x2' in line and 'x4' in line
    assert not (tmp_path / 'loop').exists()


def test_a_heldout_folder_that_overlaps_a_batch_is_refused(tmp_path, capsys):
    batch = make_batch(str(tmp_path / 'b1'), ['apple', 'aerial'])
    heldout = make_batch(str(tmp_path / 'heldout'), ['aerial'])
    assert main(loop_args(str(tmp_path / 'loop'), batch, extra=['--heldout', heldout])) == 2
    line = error_line(capsys)
    assert 'aerial' in line and 'the held-out images must be ones the fine-tune never sees' in line
    assert main(loop_args(str(tmp_path / 'loop'), batch, extra=['--heldout', batch])) == 2
    assert 'the same folder' in error_line(capsys)
    assert not (tmp_path / 'loop').exists()


def test_a_batch_without_artifacts_is_not_fine_tuned_and_says_so(tmp_path, capsys):
    batch = make_batch(str(tmp_path / 'clean'), CLEAN)
    out = str(tmp_path / 'loop')
    assert main(loop_args(out, batch)) == 0
    printed = capsys.readouterr().out
    assert 'no image of this batch (2) has artifacts' in printed and 'no fine-tune this round' in printed
    assert 'current model: v0' in printed
    assert not osp.exists(osp.join(out, 'rounds', '001', 'finetune'))
    with open(osp.join(out, 'models', 'manifest.json')) as f:
        assert [v['version'] for v in json.load(f)['versions']] == ['v0']


def test_other_settings_in_the_same_folder_are_refused(tmp_path, capsys):
    batch = make_batch(str(tmp_path / 'clean'), CLEAN)
    out = str(tmp_path / 'loop')
    assert main(loop_args(out, batch)) == 0
    before = stage_records(out)
    capsys.readouterr()
    assert main(loop_args(out, batch, extra=['--seed', '3'])) == 2
    line = error_line(capsys)
    assert 'loop_state.json' in line and 'other settings (seed)' in line
    other = make_batch(str(tmp_path / 'other'), CLEAN[:1])
    assert main(loop_args(out, other)) == 2
    assert 'resume with those' in error_line(capsys)
    assert stage_records(out) == before


def test_another_tile_is_refused_at_the_start_like_any_other_setting(tmp_path, capsys, monkeypatch):
    batch = make_batch(str(tmp_path / 'clean'), CLEAN[:1])
    out = str(tmp_path / 'loop')

    def killed(*args):
        raise Interrupted(15)

    monkeypatch.setattr(loop, '_write_template', killed)  # the first stage: the state file is written, nothing else
    assert main(loop_args(out, batch)) == 143
    capsys.readouterr()
    assert main(loop_args(out, batch, extra=['--tile', '32'])) == 2
    line = error_line(capsys)
    assert line == (f'error: {osp.join(out, "loop_state.json")}: this folder was written with other settings (tile); '
                    'run it with the same settings and files to resume, or use another --out')
    assert '--overwrite' not in line


def test_architecture_arguments_are_checked_before_any_work(tmp_path, capsys):
    batch = make_batch(str(tmp_path / 'b1'), ['apple'])
    out = str(tmp_path / 'loop')
    gan = ['--gan-arch', 'RRDBNet', '--gan-arch-opt', 'num_block=23', '--gan-weights',
           osp.join(PRETRAINED, 'demo_gan_x4.pth')]
    assert main(['loop', '--input', batch, '--out', out, *gan, *DEMO_MODELS[6:], '--length', 'fixed']) == 2
    line = error_line(capsys)
    assert line.startswith('error: --gan-arch / --gan-arch-opt: RRDBNet: bad architecture arguments')
    assert "'num_in_ch' and 'num_out_ch'" in line
    assert not osp.exists(out)
    # The form docs/loop.md shows passes (the generator is built without weights: these are the demo's).
    loop.check_inputs(loop.LoopSettings(
        out=out, batches=(batch, ), gan_arch='RRDBNet', gan_arch_opt={'num_in_ch': 3, 'num_out_ch': 3, 'num_block': 23},
        gan_weights=gan[-1], mse_opt=DEMO_MODELS[7], mse_weights=DEMO_MODELS[9]))
    assert not osp.exists(out)


def test_settings_the_rule_cannot_use_are_refused(tmp_path, capsys):
    batch = make_batch(str(tmp_path / 'clean'), CLEAN)
    args = ['loop', '--input', batch, '--out', str(tmp_path / 'loop'), *DEMO_MODELS]
    assert main(args + ['--min-pool', '1']) == 2
    assert '--min-pool 1: --length chosen needs at least 2 images' in error_line(capsys)
    assert main(args + ['--val-fraction', '1']) == 2
    assert '--val-fraction 1.0: must be a finite number in (0, 1)' in error_line(capsys)
    assert main(args + ['--tie-area', '-0.1']) == 2
    assert '--tie-area -0.1: must be a finite number in [0, 100]' in error_line(capsys)
    assert main(args + ['--pool-tolerance', 'nan']) == 2
    assert '--pool-tolerance nan: must be a finite number in [0, 100]' in error_line(capsys)
    assert main(args + ['--min-pool', '2', '--holdback', '0.25']) == 2
    assert '--holdback 0.25: needs --train-clean' in error_line(capsys)
    assert main(args + ['--min-pool', '2', '--train-clean', '--holdback', '1']) == 2
    assert '--holdback 1.0: must be a finite number in [0, 1)' in error_line(capsys)
    assert main(['loop', '--input', batch, '--out', str(tmp_path / 'loop'), *DEMO_MODELS[2:]]) == 2
    assert '--gan-opt / --gan-arch: give exactly one of them' in error_line(capsys)
    assert not (tmp_path / 'loop').exists()


def test_a_watched_folder_is_polled_until_stop(tmp_path, capsys):
    watch = make_batch(str(tmp_path / 'watch'), CLEAN[:1])
    open(osp.join(watch, 'STOP'), 'w').close()
    out = str(tmp_path / 'loop')
    args = ['loop', '--watch', watch, '--out', out, *DEMO_MODELS, '--min-pool', '99']
    assert main(args) == 0
    assert 'round 1: 1 images' in capsys.readouterr().out
    shutil.copy(osp.join(watch, f'{CLEAN[0]}.png'), osp.join(watch, 'copy.png'))
    assert main(args) == 0  # resumes: round 1 is recorded, the new image is round 2
    printed = capsys.readouterr().out
    assert 'round 2: 1 images' in printed
    assert sorted(os.listdir(osp.join(out, 'rounds', '002', 'lr'))) == ['copy.png']


def test_no_traceback_reaches_a_user(tmp_path):
    batch = make_batch(str(tmp_path / 'b1'), ['apple'])
    proc = subprocess.run([sys.executable, '-m', 'desra_basicsr', *loop_args(str(tmp_path / 'loop'), batch),
                           '--template', str(tmp_path / 'none.yml')],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f'error: {tmp_path / "none.yml"}: file not found'
