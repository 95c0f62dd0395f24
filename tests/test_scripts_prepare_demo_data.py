"""``scripts/prepare_demo_data.py``: a corpus appears complete or not at all, and bad inputs are one error line."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest

from helpers.paths import REPO_ROOT
from helpers.training import train_env

SCRIPT = osp.join(REPO_ROOT, 'scripts', 'prepare_demo_data.py')
HEADER = 'name,split,source_package,source_file,author,licence\n'
#: Three scikit-image photos, one per split.
ROWS = ('astronaut,train,scikit-image,astronaut.png,a,CC0\n'
        'chelsea,finetune,scikit-image,chelsea.png,a,CC0\n'
        'coffee,heldout,scikit-image,coffee.png,a,CC0\n')
MISSING_ROW = 'missing,heldout,opencv-doc,/nonexistent/opencv/samples/data/missing.jpg,a,CC0\n'


@pytest.fixture(scope='module')
def script():
    spec = importlib.util.spec_from_file_location('prepare_demo_data', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manifest(tmp_path, rows: str = ROWS) -> str:
    path = tmp_path / 'manifest.csv'
    path.write_text(HEADER + rows)
    return str(path)


def args(tmp_path, rows: str = ROWS):
    return ['--manifest', manifest(tmp_path, rows), '--out', str(tmp_path / 'corpus' / 'demo'), '--lr-root',
            str(tmp_path / 'lr'), '--hr-size', '64', '--variants', '2']


def staging_left(tmp_path):
    return [f for f in os.listdir(tmp_path / 'corpus') if 'partial' in f] if osp.isdir(tmp_path / 'corpus') else []


def test_builds_the_corpus_and_keeps_other_contents(script, tmp_path):
    out = tmp_path / 'corpus' / 'demo'
    (out / 'zoo').mkdir(parents=True)
    (out / 'zoo' / 'keep.txt').write_text('another tool writes here')
    (out / 'hr').mkdir()
    (out / 'hr' / 'stale.png').write_bytes(b'')
    assert script.main(args(tmp_path)) == 0
    assert sorted(os.listdir(out / 'hr')) == ['astronaut.png', 'chelsea.png', 'coffee.png']
    assert sorted(os.listdir(out / 'train' / 'lq')) == ['astronaut_d00.png', 'astronaut_d01.png']
    assert sorted(os.listdir(out / 'train' / 'gt')) == ['astronaut_d00.png', 'astronaut_d01.png']
    assert os.listdir(tmp_path / 'lr' / 'finetune_lr') == ['chelsea.png']
    assert os.listdir(tmp_path / 'lr' / 'heldout_lr') == ['coffee.png']
    assert (out / 'zoo' / 'keep.txt').read_text() == 'another tool writes here'
    assert staging_left(tmp_path) == []


def test_an_interrupted_run_leaves_no_partial_corpus(script, tmp_path, monkeypatch):
    calls = []

    def degrade(*_args):
        calls.append(1)
        raise KeyboardInterrupt  # Ctrl-C after the first HR image was written

    monkeypatch.setattr(script, 'degrade', degrade)
    with pytest.raises(KeyboardInterrupt):
        script.main(args(tmp_path))
    assert calls and not osp.exists(tmp_path / 'corpus' / 'demo' / 'hr')
    assert not osp.exists(tmp_path / 'lr') and staging_left(tmp_path) == []


def test_a_missing_photo_is_found_before_anything_is_written(script, tmp_path, capsys):
    assert script.main(args(tmp_path, ROWS + MISSING_ROW)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: /nonexistent/opencv/samples/data/missing.jpg: photo 'missing' not found; install its "
                   'package: apt-get install opencv-doc']
    assert not osp.exists(tmp_path / 'corpus') and not osp.exists(tmp_path / 'lr')


def test_out_defaults_to_the_repository(script, tmp_path, monkeypatch):
    seen = []

    def staging(out):
        seen.append(out)
        raise script.DesraInputError('stop here')

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(script, '_staging_folder', staging)
    assert script.main(['--manifest', manifest(tmp_path)]) == 2
    assert seen == [osp.join(REPO_ROOT, 'datasets', 'demo')]


def test_a_missing_manifest_is_one_error_line(tmp_path):
    proc = subprocess.run([sys.executable, SCRIPT, '--manifest', str(tmp_path / 'none.csv'), '--out',
                           str(tmp_path / 'out')], env=train_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f'error: {tmp_path / "none.csv"}: corpus manifest not found'
    assert not osp.exists(tmp_path / 'out')
