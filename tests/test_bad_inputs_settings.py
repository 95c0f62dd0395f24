"""Bad settings through the real command line: refused with exit 2 and one line naming the option, nothing written.

Every number option of every job command is a declared range of its settings class (:mod:`desra_basicsr.settings`);
the property tests read the range from the class and drive ``desra`` with values outside it. The rest are the cases
found by hand: ``--dilate nan`` / ``inf``, ``--tie-margin nan``, ``--region-sigma nan``, devices that are not
``cpu`` / ``cuda`` (and a rerun with a good device on the same ``--out``), and options a method ignores.
"""
import dataclasses
import json
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from desra_basicsr.commands import main
from desra_basicsr.demo import DemoSettings
from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.image_io import write_image, write_mask
from desra_basicsr.jobs.calibrate import CalibrateSettings
from desra_basicsr.jobs.detect import DetectSettings
from desra_basicsr.jobs.evaluate import EvaluateSettings
from desra_basicsr.jobs.fuse import FuseSettings
from desra_basicsr.jobs.pseudo_gt import PseudoGTSettings
from desra_basicsr.jobs.report import ReportSettings
from desra_basicsr.jobs.sr import SRSettings
from desra_basicsr.settings import check_number
from helpers.paths import REPO_ROOT
from helpers.photos import make_pair
from helpers.training import train_env

VGG_KWARGS = {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 3, 'upscale': 4, 'act_type': 'prelu'}
#: Every float option of every command: (command, settings class, field).
FLOAT_OPTIONS = [
    ('detect', DetectSettings, 'threshold'),
    ('detect', DetectSettings, 'prob_threshold'),
    ('pseudo-gt', PseudoGTSettings, 'dilate'),
    ('pseudo-gt', PseudoGTSettings, 'feather'),
    ('evaluate', EvaluateSettings, 'p'),
    ('evaluate', EvaluateSettings, 'thresholds'),
    ('calibrate', CalibrateSettings, 'percentile'),
    ('report', ReportSettings, 'dilate'),
    ('report', ReportSettings, 'feather'),
    ('fuse', FuseSettings, 'region_sigma'),
    ('fuse', FuseSettings, 'feather_sigma'),
    ('fuse', FuseSettings, 'artifact_threshold'),
    ('fuse', FuseSettings, 'tie_margin'),
]
#: Integer options and a value outside their range.
INT_OPTIONS = [
    ('detect', DetectSettings, 'min_area', -1),
    ('detect', DetectSettings, 'min_area_ref', 0),
    ('sr', SRSettings, 'tile', -1),
    ('sr', SRSettings, 'tile_pad', -1),
    ('evaluate', EvaluateSettings, 'min_area', -5),
    ('calibrate', CalibrateSettings, 'bins', 19),
    ('report', ReportSettings, 'tile_height', 15),
    ('fuse', FuseSettings, 'margin', -1),
    ('demo', DemoSettings, 'iters', 0),
    ('demo', DemoSettings, 'seed', -1),
]


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    """Small valid inputs of every command (one photo crop, its mask, LR image and a tiny generator)."""
    root = tmp_path_factory.mktemp('inputs')
    mse, gan, mask = make_pair('chelsea', 0, 0, 48, 48)
    paths = {key: str(root / key) for key in ('mse', 'gan', 'gan2', 'masks', 'lr')}
    write_image(osp.join(paths['mse'], 'chelsea.png'), mse[:96, :96])
    write_image(osp.join(paths['gan'], 'chelsea.png'), gan[:96, :96])
    write_image(osp.join(paths['gan2'], 'chelsea.png'), mse[:96, :96])
    write_mask(osp.join(paths['masks'], 'chelsea.png'), mask[:96, :96] > 0)
    write_image(osp.join(paths['lr'], 'chelsea.png'), mse[:24, :24])
    from desra_basicsr.inference import build_generator
    paths['weights'] = str(root / 'g.pth')
    torch.manual_seed(0)
    torch.save({'params': build_generator('SRVGGNetCompact', VGG_KWARGS).state_dict()}, paths['weights'])
    return paths


def argv(command, f, out):
    """A valid command line of ``command`` writing to ``out``."""
    arch = ['--arch', 'SRVGGNetCompact', '--arch-opt'] + [f'{k}={v}' for k, v in VGG_KWARGS.items()]
    return {
        'sr': ['sr', *arch, '--weights', f['weights'], '--input', f['lr'], '--out', out],
        'detect': ['detect', '--mse', f['mse'], '--gan', f['gan'], '--out', out],
        'pseudo-gt': ['pseudo-gt', '--mse', f['mse'], '--gan', f['gan'], '--masks', f['masks'], '--out', out],
        'evaluate': ['evaluate', '--sweep', '--mse', f['mse'], '--gan', f['gan'], '--gt', f['masks'], '--json',
                     osp.join(out, 'e.json')],
        'calibrate': ['calibrate', '--mse', f['mse'], '--gan', f['gan'], '--out', osp.join(out, 'w.yml')],
        'report': ['report', '--lr', f['lr'], '--mse', f['mse'], '--gan', f['gan'], '--masks', f['masks'], '--out',
                   out],
        'fuse': ['fuse', '--inputs', f['gan'], f['gan2'], '--mse', f['mse'], '--out', out],
        'demo': ['demo', '--out', out],
    }[command]


def spec_of(cls, name):
    return next(f for f in dataclasses.fields(cls) if f.name == name).metadata['desra']


def refused(command_line, capsys, option):
    """Run ``desra``: exit 2, one line on stderr naming ``option``, no traceback."""
    capsys.readouterr()
    assert main(command_line) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith('error: '), err
    assert option in err and 'Traceback' not in err
    return err


def inside(value, spec):
    try:
        check_number('x', value, spec)
    except DesraSettingsError:
        return False
    return True


@pytest.mark.parametrize('command,cls,name', FLOAT_OPTIONS, ids=[f'{c}-{n}' for c, _, n in FLOAT_OPTIONS])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]), st.floats(allow_nan=True)))
def test_float_options_outside_their_range_exit_2(folders, tmp_path, capsys, command, cls, name, value):
    spec = spec_of(cls, name)
    assume(not inside(value, spec))
    out = str(tmp_path / 'out')
    option = '--' + name.replace('_', '-')
    refused(argv(command, folders, out) + [f'{option}={value!r}'], capsys, option)
    assert not osp.exists(out)


@pytest.mark.parametrize('command,cls,name,value', INT_OPTIONS, ids=[f'{c}-{n}' for c, _, n, _ in INT_OPTIONS])
def test_int_options_outside_their_range_exit_2(folders, tmp_path, capsys, command, cls, name, value):
    assert not inside(value, spec_of(cls, name))
    out = str(tmp_path / 'out')
    option = '--' + name.replace('_', '-')
    refused(argv(command, folders, out) + [f'{option}={value}'], capsys, option)
    assert not osp.exists(out)


def test_pseudo_gt_dilate_nan_or_inf_leaves_a_finished_folder_as_it_was(folders, tmp_path, capsys):
    out = str(tmp_path / 'pgt')
    assert main(argv('pseudo-gt', folders, out)) == 0
    with open(osp.join(out, 'summary.json'), 'rb') as f:
        before = f.read()
    for value in ('nan', 'inf', '-1', '5000'):
        refused(argv('pseudo-gt', folders, out) + ['--dilate', value], capsys, '--dilate')
    with open(osp.join(out, 'summary.json'), 'rb') as f:
        assert f.read() == before
    json.loads(before)  # valid JSON: no NaN was ever recorded
    assert main(argv('pseudo-gt', folders, out)) == 0
    assert '0 done, 1 kept' in capsys.readouterr().out


@pytest.mark.parametrize('option', ['--tie-margin', '--region-sigma', '--feather-sigma', '--colour-sigma'])
def test_fuse_nan_options_are_refused(folders, tmp_path, capsys, option):
    out = str(tmp_path / 'fused')
    err = refused(argv('fuse', folders, out) + [option, 'nan'], capsys, option)
    assert f'{option} nan: must be a finite number' in err
    assert not osp.exists(out)


@pytest.mark.parametrize('command', ['sr', 'detect', 'fuse', 'evaluate', 'calibrate', 'demo'])
@pytest.mark.parametrize('device', ['mps', 'meta'])
def test_unknown_devices_are_refused(folders, tmp_path, capsys, command, device):
    out = str(tmp_path / 'out')
    err = refused(argv(command, folders, out) + ['--device', device], capsys, '--device')
    assert f'--device {device}: use cpu, cuda or cuda:N' in err
    assert not osp.exists(out)


@pytest.mark.parametrize('command', ['sr', 'detect'])
def test_a_refused_device_does_not_block_the_rerun_on_cpu(folders, tmp_path, capsys, command):
    out = str(tmp_path / 'out')
    for device in ('mps', 'meta'):
        refused(argv(command, folders, out) + ['--device', device], capsys, '--device')
    assert main(argv(command, folders, out) + ['--device', 'cpu']) == 0
    assert '1 done' in capsys.readouterr().out
    with open(osp.join(out, 'summary.json')) as f:
        assert 'device' not in json.load(f)['meta']  # a folder resumes on any device


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
@pytest.mark.parametrize('command', ['sr', 'detect', 'fuse', 'calibrate'])
def test_cuda_without_cuda_exits_2_before_any_output(folders, tmp_path, capsys, command):
    out = str(tmp_path / 'out')
    err = refused(argv(command, folders, out) + ['--device', 'cuda'], capsys, '--device cuda')
    assert 'CUDA is not available' in err
    assert not osp.exists(out)


def test_sr_with_a_bad_device_prints_no_traceback(folders, tmp_path):
    proc = subprocess.run([sys.executable, '-m', 'desra_basicsr'] + argv('sr', folders, str(tmp_path / 'o')) +
                          ['--device', 'mps'], env=train_env(), cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip() == 'error: --device mps: use cpu, cuda or cuda:N (or auto)'


def test_ldl_methods_ignore_and_do_not_record_desra_settings(folders, tmp_path, capsys):
    out = str(tmp_path / 'ldl')
    assert main(argv('detect', folders, out) + ['--method', 'ldl-0.01']) == 0
    with open(osp.join(out, 'summary.json')) as f:
        meta = json.load(f)['meta']
    assert not {'threshold', 'min_area', 'numerator', 'device'} & set(meta)
    for extra in (['--threshold', '0.5'], ['--min-area', '10', '--numerator', 'paper']):
        capsys.readouterr()
        assert main(argv('detect', folders, out) + ['--method', 'ldl-0.01'] + extra) == 0
        assert '0 done, 1 kept' in capsys.readouterr().out
    # a setting DeSRA-det uses still refuses a folder it wrote
    desra = str(tmp_path / 'desra')
    assert main(argv('detect', folders, desra)) == 0
    capsys.readouterr()
    assert main(argv('detect', folders, desra) + ['--threshold', '0.5']) == 2
    assert 'was written with other settings (threshold: 0.7 -> 0.5)' in capsys.readouterr().err
