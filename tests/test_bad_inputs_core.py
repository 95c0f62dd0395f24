"""Bad inputs of the folder-job core, through the real command line: the exit code, a one-line message naming the
file or option, no traceback, and what ``--out`` holds afterwards.

Path spellings of one folder, another command's folder, an ``--out`` the file system cannot hold, a full disk, stale
outputs, temporary-file names, and Ctrl-C / SIGTERM mid-run. Tiny images, no segmenter.
"""
import ast
import errno
import glob
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager

import cv2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desra_basicsr.commands import main
from desra_basicsr.image_io import MAX_IMAGE_PIXELS_ENV, write_image
from helpers.paths import REPO_ROOT
from helpers.photos import make_pair
from helpers.training import train_env

NAMES = ('astronaut', 'chelsea', 'coffee')
SIZE = 48


def make_sr(root, names=NAMES):
    """``root/sr/{mse,gan}`` of tiny crops of real photos (GAN-SR: painted stripes)."""
    folders = [osp.join(root, 'sr', key) for key in ('mse', 'gan')]
    for name in names:
        mse, gan, _ = make_pair(name, 0, 0, SIZE // 2, SIZE // 2)
        write_image(osp.join(folders[0], f'{name}.png'), mse[:SIZE, :SIZE])
        write_image(osp.join(folders[1], f'{name}.png'), gan[:SIZE, :SIZE])
    return folders


def detect(mse, gan, out, *extra):
    return main(['detect', '--mse', mse, '--gan', gan, '--out', out, '--min-area', '5', *extra])


def contents(folder):
    """Every file under ``folder`` (relative path -> bytes)."""
    found = {}
    for path in glob.glob(osp.join(folder, '**'), recursive=True):
        if osp.isfile(path):
            with open(path, 'rb') as f:
                found[osp.relpath(path, folder)] = f.read()
    return found


def summary_of(folder):
    with open(osp.join(folder, 'summary.json')) as f:
        return json.load(f)


def errors(err):
    """The lines of stderr that are neither notices nor progress bars."""
    return [line for line in err.splitlines() if line.strip() and not line.startswith('notice:') and '%|' not in line]


def one_error(err, *parts):
    """Assert stderr holds exactly one error line, without traceback, naming every part; returns it."""
    lines = errors(err)
    assert 'Traceback' not in err and len(lines) == 1, err
    assert lines[0].startswith('error: ') and all(part in lines[0] for part in parts), lines[0]
    return lines[0]


@contextmanager
def cwd(folder):
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


# ------------------------------------------------------------------------------------------ layering
def test_folders_and_evaluation_do_not_import_jobs():
    package = osp.join(REPO_ROOT, 'desra_basicsr')
    for path in [osp.join(package, 'folders.py')] + glob.glob(osp.join(package, 'evaluation', '*.py')):
        with open(path) as f:
            tree = ast.parse(f.read())
        modules = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        modules += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        assert not [m for m in modules if m and m.startswith('desra_basicsr.jobs')], path


def test_masks_missing_from_one_folder_are_named_by_role(tmp_path, capsys):
    from desra_basicsr.evaluation.folders import pair_masks
    from desra_basicsr.folders import pair_folders
    mse, gan = make_sr(str(tmp_path))
    os.remove(osp.join(gan, 'coffee.png'))
    pairs, absent = pair_folders({'mse': mse, 'gan': gan})
    assert [osp.basename(p[0]) for p in pairs] == ['astronaut.png', 'chelsea.png'] and absent == {'coffee': ('gan', )}
    assert len(pair_masks(mse, gan, ('pred', 'gt'))) == 2
    assert f'1 image(s) missing from --gt {gan}, not scored: coffee' in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ path spellings
def test_resume_whatever_the_spelling_of_the_folders(tmp_path, capsys):
    make_sr(str(tmp_path))
    with cwd(tmp_path):
        assert detect('sr/mse', 'sr/gan', 'r') == 0
        first = contents('r')
        for spelling in (f'{tmp_path}/sr/mse', './sr/mse', 'sr//mse/', 'sr/gan/../mse'):
            capsys.readouterr()
            assert detect(spelling, './sr/gan', osp.join(str(tmp_path), 'r')) == 0
            assert '0 done, 3 kept' in capsys.readouterr().out
    with cwd(tmp_path / 'sr'):
        assert detect('mse', 'gan', '../r') == 0
        assert '0 done, 3 kept' in capsys.readouterr().out
    assert contents(str(tmp_path / 'r')) == first


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    """A finished detection of ``root/sr`` into ``root/r``."""
    root = str(tmp_path_factory.mktemp('spellings'))
    mse, gan = make_sr(root)
    assert detect(mse, gan, osp.join(root, 'r')) == 0
    os.makedirs(osp.join(root, 'sr', 'elsewhere'))
    return root


def spelled(root, here, parts):
    """A strategy of spellings of ``root/<parts>`` seen from ``root/<here>``."""
    target = osp.join(root, *parts)
    return st.sampled_from([
        target,
        osp.relpath(target, osp.join(root, here)),
        './' + osp.relpath(target, osp.join(root, here)),
        osp.relpath(target, osp.join(root, here)) + '/',
        target.replace(root, root + '/sr/..'),
        target.replace(root, root + '//'),
    ])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), here=st.sampled_from(['.', 'sr', 'sr/elsewhere']))
def test_any_spelling_resumes_with_nothing_recomputed(finished, data, here, capsys):
    mse = data.draw(spelled(finished, here, ['sr', 'mse']))
    gan = data.draw(spelled(finished, here, ['sr', 'gan']))
    out = data.draw(spelled(finished, here, ['r']))
    capsys.readouterr()
    with cwd(osp.join(finished, here)):
        assert detect(mse, gan, out) == 0
    assert '0 done, 3 kept' in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ another command's folder
def test_another_commands_folder_is_refused_even_with_overwrite(tmp_path, capsys):
    mse, gan = make_sr(str(tmp_path))
    masks, out = str(tmp_path / 'masks'), str(tmp_path / 'out')
    assert detect(mse, gan, masks) == 0 and detect(mse, gan, out) == 0
    before = contents(out)
    capsys.readouterr()
    for extra in ([], ['--overwrite']):
        argv = ['pseudo-gt', '--mse', mse, '--gan', gan, '--masks', masks, '--out', out, *extra]
        assert main(argv) == 2
        line = one_error(capsys.readouterr().err, out, 'holds the outputs of `desra detect`', 'another --out')
        assert 'not even with --overwrite' in line
        assert contents(out) == before


@pytest.mark.parametrize('summary', ['{not json', '{"meta": {}, "items": {}}', '[1, 2]'])
def test_a_foreign_or_corrupt_summary_is_never_replaced(tmp_path, capsys, summary):
    mse, gan = make_sr(str(tmp_path))
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'summary.json').write_text(summary)
    (out / 'astronaut.png').write_bytes(b'a file of another program')
    before = contents(str(out))
    for extra in ([], ['--overwrite']):
        assert detect(mse, gan, str(out), *extra) == 2
        line = one_error(capsys.readouterr().err, str(out / 'summary.json'), 'another --out')
        assert '--overwrite will not' in line or 'not even with --overwrite' in line
        assert contents(str(out)) == before
    os.remove(out / 'summary.json')  # what the message offers: then --overwrite may replace the files
    assert detect(mse, gan, str(out), '--overwrite') == 0


# ------------------------------------------------------------------------------------------ unusable --out
@pytest.mark.parametrize('kind', ['empty', 'long name', 'long path'])
def test_an_out_the_file_system_cannot_hold_is_refused_creating_nothing(tmp_path, capsys, kind):
    mse, gan = make_sr(str(tmp_path))
    out = {
        'empty': '',
        'long name': str(tmp_path / 'new' / ('a' * 300) / 'masks'),
        'long path': str(tmp_path / 'new' / '/'.join(['d' * 200] * 25)),
    }[kind]
    before = sorted(os.listdir(tmp_path))
    assert detect(mse, gan, out) == 2
    one_error(capsys.readouterr().err, '--out')
    assert sorted(os.listdir(tmp_path)) == before


def test_a_full_disk_names_the_file_and_keeps_the_summary(tmp_path, capsys, monkeypatch):
    mse, gan = make_sr(str(tmp_path))
    out = str(tmp_path / 'out')
    original, calls = cv2.imwrite, []

    def full_after_one(path, img, *args):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(path, img, *args)

    monkeypatch.setattr(cv2, 'imwrite', full_after_one)
    assert detect(mse, gan, out) == 1
    one_error(capsys.readouterr().err, osp.join(out, 'chelsea.png'), 'No space left on device', 'run the same command')
    assert list(summary_of(out)['items']) == ['astronaut']
    assert sorted(os.listdir(out)) == ['astronaut.png', 'summary.json']
    monkeypatch.setattr(cv2, 'imwrite', original)
    assert detect(mse, gan, out) == 0
    assert '2 done, 1 kept' in capsys.readouterr().out
    before = contents(out)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(json, 'dump', no_space)  # even summary.json cannot be written: its last version is kept
    assert detect(mse, gan, out, '--overwrite') == 1
    monkeypatch.undo()
    one_error(capsys.readouterr().err, osp.join(out, 'summary.json'), 'No space left on device')
    assert contents(out) == before


def test_a_malformed_pixel_limit_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    mse, gan = make_sr(str(tmp_path))
    out, finished = str(tmp_path / 'out'), str(tmp_path / 'finished')
    assert detect(mse, gan, finished) == 0
    before = contents(finished)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, 'abc')
    for folder in (out, finished):
        assert detect(mse, gan, folder, '--overwrite') == 2
        one_error(capsys.readouterr().err, f'{MAX_IMAGE_PIXELS_ENV}=abc: must be a positive whole number')
    assert not osp.exists(out) and contents(finished) == before


# ------------------------------------------------------------------------------------------ stale outputs
def test_outputs_of_vanished_inputs_are_removed(tmp_path, capsys):
    mse, gan = make_sr(str(tmp_path))
    out = str(tmp_path / 'out')
    assert detect(mse, gan, out, '--save-maps') == 0
    (tmp_path / 'out' / 'mine.txt').write_text('a file of the user')
    kept = {k: v for k, v in contents(out).items() if 'coffee' not in k and k != 'summary.json'}
    os.remove(osp.join(gan, 'coffee.png'))  # its partner stays: the item fails, its old mask must not stay
    assert detect(mse, gan, out, '--save-maps') == 1
    err = capsys.readouterr().err
    assert 'removed 2 file(s) that the earlier run wrote' in err and 'coffee.png' in err
    assert {k: v for k, v in contents(out).items() if k != 'summary.json'} == kept
    assert summary_of(out)['items']['coffee']['status'] == 'error'
    os.remove(osp.join(mse, 'coffee.png'))
    os.remove(osp.join(mse, 'chelsea.png'))
    os.remove(osp.join(gan, 'chelsea.png'))
    assert detect(mse, gan, out, '--save-maps') == 0
    err = capsys.readouterr().err
    assert '2 item(s) of the earlier run are no longer in the inputs' in err and 'chelsea, coffee' in err
    assert sorted(contents(out)) == ['astronaut.png', 'maps/astronaut_D.npy', 'mine.txt', 'summary.json']
    assert list(summary_of(out)['items']) == ['astronaut']


def test_overwrite_removes_what_the_earlier_run_wrote_and_this_one_does_not(tmp_path, capsys):
    mse, gan = make_sr(str(tmp_path))
    out, fresh = str(tmp_path / 'out'), str(tmp_path / 'fresh')
    assert detect(mse, gan, out, '--save-maps') == 0
    assert detect(mse, gan, out, '--overwrite', '--threshold', '0.5') == 0
    assert 'removed 3 file(s)' in capsys.readouterr().err and not osp.exists(osp.join(out, 'maps'))
    assert detect(mse, gan, fresh, '--threshold', '0.5') == 0
    assert contents(out) == contents(fresh)


def test_an_empty_output_is_not_finished(tmp_path, capsys):
    mse, gan = make_sr(str(tmp_path))
    out = str(tmp_path / 'out')
    assert detect(mse, gan, out) == 0
    first = contents(out)
    open(osp.join(out, 'chelsea.png'), 'w').close()
    assert detect(mse, gan, out) == 0
    assert '1 done, 2 kept' in capsys.readouterr().out and contents(out) == first


def test_only_the_jobs_own_temporary_files_are_removed(tmp_path):
    mse, gan = make_sr(str(tmp_path))
    out = tmp_path / 'out'
    assert detect(mse, gan, str(out)) == 0
    mine = ['.photo.20240101.tmp.png', '.chelsea.ab12cd_9.tmp.png', '.desra-tmp-notes.txt', 'a.tmp.png']
    for name in mine + ['.desra-tmp-ab12cd_9.png']:
        (out / name).write_text('x')
    assert detect(mse, gan, str(out)) == 0
    assert sorted(os.listdir(out)) == sorted(mine + ['summary.json'] + [f'{name}.png' for name in NAMES])


# ------------------------------------------------------------------------------------------ signals
# The child takes Python's own SIGINT handler back: a test runner started with SIGINT ignored (`nohup ... &` in a
# script) passes SIG_IGN on, and then Ctrl-C would never reach the command under test.
SLOW_THIRD_READ = textwrap.dedent("""
    import runpy, signal, sys, time
    import desra_basicsr.image_io as image_io
    signal.signal(signal.SIGINT, signal.default_int_handler)
    original, marker = image_io.read_image, sys.argv.pop(1)

    def read_image(path):
        if 'coffee' in path:  # the third item: tell the test, then wait for its signal
            open(marker, 'w').close()
            time.sleep(120)
        return original(path)

    image_io.read_image = read_image
    runpy.run_module('desra_basicsr', run_name='__main__', alter_sys=True)
""")


@pytest.mark.parametrize('command', ['detect', 'pseudo-gt'])
@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_exits_with_one_line_and_resumes(tmp_path, capsys, command, signum):
    mse, gan = make_sr(str(tmp_path))
    masks = str(tmp_path / 'masks')
    assert detect(mse, gan, masks) == 0
    extra = ['--masks', masks] if command == 'pseudo-gt' else []
    argv = [command, '--mse', mse, '--gan', gan, *extra, '--out']
    out, clean, marker = str(tmp_path / 'out'), str(tmp_path / 'clean'), str(tmp_path / 'marker')
    proc = subprocess.Popen([sys.executable, '-c', SLOW_THIRD_READ, marker, *argv, out],
                            env=train_env(),
                            cwd=REPO_ROOT,
                            stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not osp.exists(marker) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 128 + signum, err
    assert 'Traceback' not in err
    assert errors(err) == [
        f'interrupted ({signal.Signals(signum).name}): the outputs finished so far are kept; run '
        'the same command again to resume'
    ]
    assert sorted(summary_of(out)['items']) == ['astronaut', 'chelsea']
    capsys.readouterr()
    assert main(argv + [out]) == 0
    assert '1 done, 2 kept' in capsys.readouterr().out
    assert main(argv + [clean]) == 0
    assert contents(out).keys() == contents(clean).keys()
    assert summary_of(out)['items'] == summary_of(clean)['items']
    assert {k: v for k, v in contents(out).items() if k != 'summary.json'} == \
        {k: v for k, v in contents(clean).items() if k != 'summary.json'}
    shutil.rmtree(out)


def test_sigterm_while_a_job_loads_its_models_exits_with_one_line(capsys):
    """SIGTERM before the folder job starts (imports, building a segmenter) ends the command like Ctrl-C does."""
    from desra_basicsr.commands import run_job_command

    def loading():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal arrives during this
        raise AssertionError('SIGTERM did not interrupt the job')

    assert run_job_command(loading) == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip()
    assert err.startswith('interrupted (SIGTERM)') and '\n' not in err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was restored
