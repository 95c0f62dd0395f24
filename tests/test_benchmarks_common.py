"""What every benchmark script shares (``benchmarks/common.py``): the handler of bad input, atomic outputs, and the
argument checks that run before any work."""
import ast
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from benchmarks import common
from desra_basicsr.errors import DesraInputError, DesraSettingsError
from helpers.paths import REPO_ROOT
from helpers.training import train_env

SCRIPTS = sorted(p for p in glob.glob(osp.join(REPO_ROOT, 'benchmarks', '*.py'))
                 if osp.basename(p) not in ('__init__.py', 'common.py'))


def _exit(main, capsys, **kwargs):
    with pytest.raises(SystemExit) as err:
        common.run_main(main, **kwargs)
    return err.value.code, capsys.readouterr().err


def test_bad_input_ends_with_one_error_line_and_the_commands_exit_codes(capsys):
    def settings():
        raise DesraSettingsError('/w/sr: was written with other settings (a: 1 -> 2); use another --out, or '
                                 '--overwrite to compute every output again (/w/sr/summary.json)')

    def bad_file():
        raise DesraInputError('/x.png: cannot read the image')

    def stops():
        raise SystemExit('--zoo z.json: no zoo manifest')

    code, err = _exit(settings, capsys)
    assert code == 2 and err == ('error: /w/sr: was written with other settings (a: 1 -> 2); use another --work '
                                 '(/w/sr/summary.json)\n')
    code, err = _exit(settings, capsys, out_option='--out')
    assert code == 2 and 'use another --out (' in err and '--overwrite' not in err
    assert _exit(bad_file, capsys) == (1, 'error: /x.png: cannot read the image\n')
    assert _exit(stops, capsys) == (1, 'error: --zoo z.json: no zoo manifest\n')
    assert _exit(lambda: 3, capsys) == (3, '')
    assert _exit(lambda: {'figures': 1}, capsys) == (0, '')


def test_job_messages_lose_the_options_a_benchmark_does_not_have():
    for message in ('/w/a: holds outputs of this job (x.png) but no summary.json, so their settings are unknown; use '
                    'another --out, or --overwrite to compute them again',
                    '/w/a: not written by desra (not a job summary), so its folder may hold the files of another '
                    'program and --overwrite will not replace them; choose another --out, or delete /w/a/s.json',
                    '/w/a: holds the outputs of `desra sr`; `desra fuse` does not write into the folder of another '
                    'command, not even with --overwrite: choose another --out'):
        reworded = common.benchmark_message(message)
        assert '--overwrite' not in reworded and '--out' not in reworded and 'another --work' in reworded


def test_json_outputs_are_written_atomically(tmp_path):
    path = tmp_path / 'results.json'
    common.write_json(str(path), {'a': 1})
    with pytest.raises(TypeError):
        common.write_json(str(path), {'a': 2, 'b': object()})  # fails half-way through json.dump
    assert json.loads(path.read_text()) == {'a': 1} and os.listdir(tmp_path) == ['results.json']
    common.write_text(str(tmp_path / 'sub' / 'log.txt'), 'done\n')
    assert (tmp_path / 'sub' / 'log.txt').read_text() == 'done\n'


@pytest.mark.parametrize('script', SCRIPTS, ids=osp.basename)
def test_every_script_runs_under_the_handler_and_writes_files_atomically(script):
    with open(script, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    guard = [node for node in tree.body if isinstance(node, ast.If) and 'main' in ast.unparse(node.test)]
    assert len(guard) == 1 and ast.unparse(guard[0].body[0]).startswith('run_main(main'), 'use common.run_main'
    temporary = {item.optional_vars.id for node in ast.walk(tree) if isinstance(node, ast.With) for item in node.items
                 if 'atomic_write_path' in ast.unparse(item.context_expr) and isinstance(item.optional_vars, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == 'open':
            modes = node.args[1:2] + [k.value for k in node.keywords if k.arg == 'mode']
            mode = modes[0] if modes else None
            if mode is not None and 'w' in ast.literal_eval(mode):
                assert ast.unparse(node.args[0]) in temporary, f'line {node.lineno}: write through atomic_write_path'


@pytest.mark.parametrize('argv, message', [
    (['bench_evaluate', '--count', '0'], 'error: --count 0: give a number >= 1'),
    (['bench_loop', '--batches', '0'], 'error: --batches 0: give a number >= 1'),
    (['bench_loop', '--batches', '17'], 'error: --batches 17: the fine-tune set has 16 photos'),
    (['bench_localizer_speed', '--gan-weights', 'absent.pth'], 'error: --gan-weights absent.pth: no such file'),
])
def test_scripts_refuse_bad_arguments_with_one_line_before_any_work(tmp_path, argv, message):
    proc = subprocess.run([sys.executable, '-m', f'benchmarks.{argv[0]}', *argv[1:]], cwd=tmp_path, env=train_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith(message) and proc.stderr.count('\n') == 1, proc.stderr
    assert not os.listdir(tmp_path)
