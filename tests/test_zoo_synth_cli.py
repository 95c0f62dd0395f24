"""``desra zoo synth`` through the real command line: the layout the zoo's readers expect, resume, seeds per item,
and bad input (exit 2, one line naming the option or folder, nothing written)."""
import json
import math
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from helpers.paths import REPO_ROOT
from helpers.photos import jpeg_with_orientation, skimage_photo_bgr, write_quarter_photos
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from desra_basicsr.commands import main
from desra_basicsr.jobs.zoo_samples import synthetic_samples
from desra_basicsr.zoo.synthetic import CLASSES


@pytest.fixture()
def hr(tmp_path):
    return write_quarter_photos(str(tmp_path / 'hr'))


def _synth(hr, out, *extra):
    return main(['zoo', 'synth', '--hr', hr, '--out', out, *extra])


def test_writes_images_exact_masks_and_the_summary_the_zoo_reads(hr, tmp_path, capsys):
    out = str(tmp_path / 'synth')
    assert _synth(hr, out, '--per-image', '2', '--seed', '3') == 0
    assert 'zoo synth: 24 done' in capsys.readouterr().out
    samples = synthetic_samples(out)
    assert len(samples) == 2 * len(CLASSES) * 2
    assert {s.cls for s in samples} == set(CLASSES)
    for sample in samples:
        name = os.path.basename(sample.image)[:-4]
        hr_stem, cls, k = name.split('__')
        assert cls == sample.cls and k in ('0', '1') and sample.target == os.path.join(hr, f'{hr_stem}.png')
        image, clean, mask = cv2.imread(sample.image), cv2.imread(sample.target), cv2.imread(sample.mask, 0)
        assert set(np.unique(mask)) <= {0, 255}
        assert np.array_equal(image[mask == 0], clean[mask == 0])
        assert (image != clean).any()
    with open(os.path.join(out, 'summary.json')) as f:
        record = json.load(f)['items']['coffee__grid__1']
    assert record['class'] == 'grid' and record['strength'] == CLASSES['grid'].strength
    assert record['area'] == pytest.approx(CLASSES['grid'].area, abs=1e-3)


def test_each_item_has_its_own_seed_so_subsets_and_reruns_paint_the_same(hr, tmp_path):
    full, subset = str(tmp_path / 'full'), str(tmp_path / 'subset')
    assert _synth(hr, full, '--per-image', '2') == 0
    assert _synth(hr, subset, '--classes', 'halo,grid', '--strength', 'grid=14', '--per-image', '2') == 0
    for name in ('chelsea__grid__1', 'coffee__halo__0'):
        for part in ('img', 'mask'):
            a = cv2.imread(os.path.join(full, part, f'{name}.png'))
            assert np.array_equal(a, cv2.imread(os.path.join(subset, part, f'{name}.png')))
    assert sorted(os.listdir(os.path.join(subset, 'img')))[0] == 'chelsea__grid__0.png'


@pytest.mark.slow
def test_two_torchrun_processes_paint_what_one_process_paints(hr, tmp_path):
    single, multi = str(tmp_path / 'single'), str(tmp_path / 'multi')
    assert _synth(hr, single, '--classes', 'grid,paste,blotch') == 0
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m', 'desra_basicsr',
        'zoo', 'synth', '--hr', hr, '--out', multi, '--classes', 'grid,paste,blotch'
    ]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(single, 'summary.json')) as a, open(os.path.join(multi, 'summary.json')) as b:
        assert json.load(a)['items'] == json.load(b)['items']
    for part in ('img', 'mask'):
        for name in os.listdir(os.path.join(single, part)):
            with open(os.path.join(single, part, name), 'rb') as a, open(os.path.join(multi, part, name), 'rb') as b:
                assert a.read() == b.read(), name


def test_rerun_keeps_finished_items_and_redoes_a_lost_one(hr, tmp_path, capsys):
    out = str(tmp_path / 'synth')
    args = ('--classes', 'texture,paste', '--shape', 'blob', '--area', '0.2')
    assert _synth(hr, out, *args) == 0
    lost = os.path.join(out, 'img', 'coffee__paste__0.png')
    with open(lost, 'rb') as f:
        before = f.read()
    kept = os.path.join(out, 'mask', 'chelsea__texture__0.png')
    mtime = os.stat(kept).st_mtime_ns
    os.remove(lost)
    capsys.readouterr()
    assert _synth(hr, out, *args) == 0
    assert 'zoo synth: 1 done, 3 kept from an earlier run, 0 failed' in capsys.readouterr().out
    with open(lost, 'rb') as f:
        assert f.read() == before
    assert os.stat(kept).st_mtime_ns == mtime
    assert _synth(hr, out, *args[:-1], '0.3') == 2  # other settings: refused without --overwrite
    assert '--overwrite' in capsys.readouterr().err


def test_an_unreadable_photo_fails_its_items_only(hr, tmp_path, capsys):
    with open(os.path.join(hr, 'broken.png'), 'wb') as f:
        f.write(b'not a png')
    out = str(tmp_path / 'synth')
    assert _synth(hr, out, '--classes', 'grid') == 1
    assert 'broken.png' in capsys.readouterr().err
    assert len(synthetic_samples(out)) == 2


def test_a_photo_basicsr_would_turn_fails_its_items_only(hr, tmp_path, capsys):
    """Its painted images would not line up with the target photo as BasicSR's paired datasets load it."""
    with open(os.path.join(hr, 'turned.jpg'), 'wb') as f:
        f.write(jpeg_with_orientation(skimage_photo_bgr('rocket')[:40, :64], 3))  # upside down: same size
    out = str(tmp_path / 'synth')
    assert _synth(hr, out, '--classes', 'grid') == 1
    assert 'turned.jpg: its EXIF orientation tag turns it' in capsys.readouterr().err
    assert len(synthetic_samples(out)) == 2


@pytest.mark.parametrize('extra, named', [
    (('--classes', 'grid,sparkle'), '--classes grid,sparkle'),
    (('--classes', ''), '--classes'),
    (('--strength', 'grid=500'), '--strength grid=500'),
    (('--strength', '500'), '--strength texture=500'),
    (('--strength', 'grid=strong'), '--strength grid=strong'),
    (('--classes', 'grid', '--strength', 'halo=2'), '--strength halo=2'),
    (('--area', '0'), '--area 0'),
    (('--per-image', '0'), '--per-image 0'),
    (('--seed', '-1'), '--seed -1'),
])
def test_bad_options_exit_2_naming_the_option_and_write_nothing(hr, tmp_path, capsys, extra, named):
    _refused(hr, str(tmp_path / 'synth'), capsys, extra, named)


def _refused(hr, out, capsys, extra, named):
    capsys.readouterr()
    assert _synth(hr, out, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: ') and named in err[0], err
    assert not os.path.exists(out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(CLASSES)),
       value=st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]), st.floats(allow_nan=True)))
def test_every_strength_outside_its_class_range_is_refused(hr, tmp_path, capsys, name, value):
    cls = CLASSES[name]
    assume(not cls.lo <= value <= cls.hi)
    _refused(hr, str(tmp_path / 'synth'), capsys, ('--classes', name, '--strength', f'{name}={value!r}'),
             f'--strength {name}=')


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, 0.0]), st.floats(allow_nan=True)))
def test_every_area_outside_0_1_is_refused(hr, tmp_path, capsys, value):
    assume(not 0 < value <= 1)
    _refused(hr, str(tmp_path / 'synth'), capsys, (f'--area={value!r}', ), '--area')


@pytest.mark.parametrize('make', [lambda p: p.mkdir(), lambda p: None])
def test_an_empty_or_missing_hr_folder_exits_2_naming_it_and_writes_nothing(tmp_path, make):
    hr = tmp_path / 'hr'
    make(hr)
    out = str(tmp_path / 'synth')
    proc = subprocess.run([sys.executable, '-m', 'desra_basicsr', 'zoo', 'synth', '--hr', str(hr), '--out', out],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(hr) in lines[0] and '--hr' in lines[0] and 'Traceback' not in proc.stderr
    assert not os.path.exists(out)
