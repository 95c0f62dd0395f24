"""Each fix of ``desra_basicsr.compat``: the upstream problem is present without it, and gone with it.

Every case runs in a fresh interpreter that loads ``compat.py`` as a stand-alone module (not through
``import desra_basicsr``, which applies all fixes), so a fix is tested alone.
"""
import os.path as osp
import subprocess
import sys
import textwrap

import pytest

from helpers.paths import REPO_ROOT
from helpers.training import train_env

LOAD_COMPAT = textwrap.dedent(f"""
    import importlib.util
    _spec = importlib.util.spec_from_file_location('compat', {osp.join(REPO_ROOT, 'desra_basicsr', 'compat.py')!r})
    compat = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(compat)
""")


def run_snippet(code: str, apply: str = '') -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter after loading compat and calling the named fixes (comma separated)."""
    calls = ''.join(f'compat.{name.strip()}()\n' for name in apply.split(',') if name.strip())
    return subprocess.run([sys.executable, '-c', LOAD_COMPAT + calls + textwrap.dedent(code)],
                          env=train_env(), capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize('fixed', [False, True])
def test_torchvision_functional_tensor(fixed):
    proc = run_snippet('import basicsr.data.degradations as d\nprint(d.rgb_to_grayscale.__module__)',
                       'fix_torchvision_functional_tensor' if fixed else '')
    if fixed:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == 'torchvision.transforms.functional'
    else:
        assert "No module named 'torchvision.transforms.functional_tensor'" in proc.stderr


@pytest.mark.parametrize('fixed', [False, True])
def test_mmcv_lite_ops_for_mmseg(fixed):
    code = """
        import torch
        import torch.nn.functional as F
        import mmseg.models
        from mmcv.ops import point_sample
        feats = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
        points = torch.rand(2, 11, 2)
        expected = F.grid_sample(feats, 2 * points[:, :, None] - 1, align_corners=False)[..., 0]
        assert torch.allclose(point_sample(feats, points), expected)
        try:
            from mmcv.ops import CrissCrossAttention
        except ModuleNotFoundError:
            print('guarded op absent')
        from mmcv.ops import sigmoid_focal_loss
        try:
            sigmoid_focal_loss(feats, feats)
        except RuntimeError as err:
            print('compiled op:', 'mmcv-lite' in str(err))
        from mmseg.registry import MODELS
        print('SegformerHead' in MODELS.module_dict and 'MixVisionTransformer' in MODELS.module_dict)
    """
    proc = run_snippet(code, 'fix_mmcv_lite_ops' if fixed else '')
    if fixed:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split('\n')[:3] == ['guarded op absent', 'compiled op: True', 'True']
    else:
        assert "No module named 'mmcv._ext'" in proc.stderr


def test_mmcv_fix_does_nothing_with_full_mmcv(tmp_path):
    """A compiled ``_ext`` next to mmcv means full mmcv: the hook must not be installed."""
    fake = tmp_path / 'mmcv'
    fake.mkdir()
    (fake / '__init__.py').write_text('')
    (fake / '_ext.cpython-311-x86_64-linux-gnu.so').write_text('')
    proc = run_snippet(f'import sys\nsys.path.insert(0, {str(tmp_path)!r})\nprint(compat.fix_mmcv_lite_ops())')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'False'


@pytest.mark.parametrize('fixed', [False, True])
def test_mmengine_checkpoint_with_numpy_meta(fixed, tmp_path):
    """OpenMMLab checkpoints keep numpy objects in ``meta``; torch>=2.6 refuses them under weights_only."""
    path = tmp_path / 'ckpt.pth'
    code = f"""
        import numpy as np
        import torch
        from mmengine.runner import load_checkpoint
        net = torch.nn.Conv2d(3, 4, 3)
        meta = dict(seed=np.int64(3), hook_msgs=dict(best_score=np.float64(0.5)), palette=np.zeros((2, 3)),
                    dtype=np.dtype('float32'))
        torch.save(dict(state_dict=net.state_dict(), meta=meta), {str(path)!r})
        other = torch.nn.Conv2d(3, 4, 3)
        ckpt = load_checkpoint(other, {str(path)!r}, map_location='cpu')
        assert torch.equal(other.weight, net.weight)
        print(float(ckpt['meta']['hook_msgs']['best_score']))
    """
    proc = run_snippet(code, 'fix_torch_load_numpy_globals' if fixed else '')
    if fixed:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().split('\n')[-1] == '0.5'
    else:
        assert 'Weights only load failed' in proc.stderr


def test_numpy_globals_do_not_unlock_arbitrary_objects(tmp_path):
    path = tmp_path / 'evil.pth'
    code = f"""
        import collections, os, torch
        class Payload:
            def __reduce__(self):
                return (os.getcwd, ())
        torch.save(dict(x=Payload()), {str(path)!r})
        try:
            torch.load({str(path)!r})
        except Exception as err:
            print('refused', 'Weights only load failed' in str(err))
    """
    proc = run_snippet(code, 'fix_torch_load_numpy_globals')
    assert proc.stdout.strip() == 'refused True', proc.stderr


CPU_DIST_ENV = "import os\nos.environ.update(RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT='{port}')\n"


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize('fixed', [False, True])
def test_basicsr_init_dist_on_cpu(fixed):
    code = CPU_DIST_ENV.format(port=_free_port()) + """
        from basicsr.utils.dist_util import init_dist, get_dist_info
        import torch.distributed as dist
        init_dist('pytorch')
        print(dist.get_backend(), get_dist_info())
    """.replace('\n        ', '\n')
    proc = run_snippet(code, 'fix_torchvision_functional_tensor,' + ('fix_basicsr_cpu_paths' if fixed else ''))
    if fixed:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == 'gloo (0, 1)'
    else:
        assert 'ZeroDivisionError' in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize('fixed', [False, True])
def test_basicsr_ddp_wrapping_on_cpu(fixed):
    code = CPU_DIST_ENV.format(port=_free_port()) + """
        import torch
        import torch.distributed as dist
        from basicsr.models.base_model import BaseModel
        dist.init_process_group('gloo')
        model = BaseModel(dict(num_gpu=0, is_train=False, dist=True))
        net = model.model_to_device(torch.nn.Conv2d(3, 3, 1))
        print(type(net).__name__, next(net.parameters()).device)
    """.replace('\n        ', '\n')
    proc = run_snippet(code, 'fix_torchvision_functional_tensor,' + ('fix_basicsr_cpu_paths' if fixed else ''))
    if fixed:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == 'DistributedDataParallel cpu'
    else:
        assert proc.returncode != 0 and ('CUDA' in proc.stderr or 'NVIDIA' in proc.stderr)


@pytest.mark.parametrize('fixed', [False, True])
def test_basicsr_resume_state_on_cpu(fixed, tmp_path):
    state = tmp_path / '3.state'
    code = f"""
        import torch
        import basicsr.train
        torch.save(dict(epoch=1, iter=3, optimizers=[], schedulers=[]), {str(state)!r})
        opt = dict(name='x', num_gpu=0, auto_resume=False, path=dict(resume_state={str(state)!r}))
        print(basicsr.train.load_resume_state(opt)['iter'])
        # --auto_resume with no saved state starts afresh, path.resume_state notwithstanding (BasicSR's own rule)
        opt = dict(name='desra-no-such-run', num_gpu=0, auto_resume=True, path=dict(resume_state={str(state)!r}))
        print(basicsr.train.load_resume_state(opt))
    """
    proc = run_snippet(code, 'fix_torchvision_functional_tensor,' + ('fix_basicsr_cpu_paths' if fixed else ''))
    if fixed:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ['3', 'None']
    else:
        assert proc.returncode != 0 and ('CUDA' in proc.stderr or 'NVIDIA' in proc.stderr)


def test_dist_backend_resolution(monkeypatch):
    from desra_basicsr import compat
    from desra_basicsr.errors import DesraSettingsError
    monkeypatch.delenv(compat.DIST_BACKEND_ENV, raising=False)
    assert compat.resolve_dist_backend('nccl') == 'gloo'  # no CUDA on the test machines
    assert compat.resolve_dist_backend('gloo') == 'gloo'
    monkeypatch.setenv(compat.DIST_BACKEND_ENV, 'mpi')
    assert compat.resolve_dist_backend('nccl') == 'mpi'
    monkeypatch.setenv(compat.DIST_BACKEND_ENV, 'nccl')  # the option file asks for nccl: no silent CPU run
    with pytest.raises(DesraSettingsError, match='dist_params.backend is nccl but CUDA is not available'):
        compat.resolve_dist_backend('nccl')


@pytest.mark.parametrize('fixed', [False, True])
def test_mmseg_class_weighted_cross_entropy_with_ignored_labels(fixed):
    code = """
        import torch
        import torch.nn.functional as F
        from mmseg.models.losses import CrossEntropyLoss
        torch.manual_seed(0)
        pred, label, weight = torch.randn(2, 2, 5, 5), torch.randint(0, 2, (2, 5, 5)), torch.tensor([1.0, 3.0])
        loss = CrossEntropyLoss(class_weight=weight.tolist(), avg_non_ignore=True)
        assert torch.allclose(loss(pred, label, ignore_index=255), F.cross_entropy(pred, label, weight=weight))
        label[0, :2] = 255  # the padding of a crop larger than its image
        padded = loss(pred, label, ignore_index=255)
        assert torch.allclose(padded, F.cross_entropy(pred, label, weight=weight, ignore_index=255)), padded
        print('again', compat.fix_mmseg_class_weight_ignore_index())  # mmseg's function now handles them: no-op
    """
    fixes = 'fix_mmcv_lite_ops' + (',fix_mmseg_class_weight_ignore_index' if fixed else '')
    proc = run_snippet(code, fixes)
    if fixed:
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip() == 'again False'
    else:
        assert 'IndexError: index 255 is out of bounds' in proc.stderr


def test_import_applies_every_fix_when_its_package_is_imported():
    code = textwrap.dedent("""
        import sys
        import desra_basicsr
        from desra_basicsr import compat
        assert not {'torch', 'basicsr', 'mmengine'} & set(sys.modules), sorted(sys.modules)
        assert set(compat.applied_fixes()) == {'mmcv_lite_ops'}
        import basicsr
        assert set(compat.applied_fixes()) == {'mmcv_lite_ops', 'torchvision_functional_tensor', 'basicsr_cpu_paths'}
        import mmengine
        assert set(compat.applied_fixes()) == set(compat.FIXES) - {'mmseg_class_weight_ignore_index'}
        import mmseg.models
        assert set(compat.applied_fixes()) == set(compat.FIXES)
    """)
    proc = subprocess.run([sys.executable, '-c', code], env=train_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
