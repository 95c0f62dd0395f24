"""Compatibility fixes for the pinned stack (see docs/install.md, "Pinned stack").

Each fix works around one named upstream problem, checks whether that problem is present, and does nothing
when the installed package is already fixed. ``import desra_basicsr`` installs an import hook
(:mod:`desra_basicsr.bootstrap`) that applies each fix right before, or right after, the package it concerns is
imported; :func:`apply_all` runs them all at once. Every fix has a test in ``tests/test_compat.py``
that fails without it.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import os
import os.path as osp
import sys
import types
from typing import Callable, Dict, Optional

#: Environment variable naming the torch.distributed backend (``nccl`` / ``gloo``). ``desra_basicsr/train.py``
#: sets it from the option file's ``dist_params.backend``; users may set it themselves.
DIST_BACKEND_ENV = 'DESRA_DIST_BACKEND'

_applied: Dict[str, bool] = {}


def _once(name: str, fix: Callable[[], bool]) -> bool:
    """Run ``fix`` once per process; remember whether it patched anything."""
    if name not in _applied:
        _applied[name] = bool(fix())
    return _applied[name]


def applied_fixes() -> Dict[str, bool]:
    """Which fixes ran and whether each one patched something (False: upstream already fine).

    Returns:
        dict[str, bool]: Fix name to "patched".
    """
    return dict(_applied)


# ---------------------------------------------------------------------------------------------------------------------
# torchvision: basicsr 1.4.2 (basicsr/data/degradations.py) does
# ``from torchvision.transforms.functional_tensor import rgb_to_grayscale``; that private module was removed in
# torchvision 0.17, so ``import basicsr`` raises ModuleNotFoundError. The public ``functional`` module has the same
# ``rgb_to_grayscale`` (the only name BasicSR uses), so alias it.
# ---------------------------------------------------------------------------------------------------------------------
def fix_torchvision_functional_tensor() -> bool:
    """Alias ``torchvision.transforms.functional_tensor`` to ``torchvision.transforms.functional`` if missing.

    Returns:
        bool: True if the alias was installed.
    """
    if importlib.util.find_spec('torchvision') is None:
        return False
    import torchvision.transforms as transforms
    if importlib.util.find_spec('torchvision.transforms.functional_tensor') is not None:
        return False
    import torchvision.transforms.functional as functional
    sys.modules['torchvision.transforms.functional_tensor'] = functional
    transforms.functional_tensor = functional
    return True


# ---------------------------------------------------------------------------------------------------------------------
# mmcv-lite: mmsegmentation 1.2.2 imports ``mmcv.ops`` at import time (mmseg/utils/mask_classification.py,
# mmseg/models/utils/point_sample.py, mmseg/models/decode_heads/san_head.py: ``point_sample``;
# mmseg/models/losses/focal_loss.py: ``sigmoid_focal_loss``). mmcv-lite ships ``mmcv/ops/*.py`` but not the compiled
# ``mmcv._ext``, so ``import mmseg.models`` raises ModuleNotFoundError, although SegFormer needs no compiled op.
# Full mmcv does not build against torch 2.14 without patching. The fix serves ``mmcv.ops`` from a tiny module:
# ``point_sample`` is mmcv's own pure-PyTorch implementation (mmcv/ops/point_sample.py, loaded from the installed
# file); ``sigmoid_focal_loss`` (used by mmseg only for CUDA tensors) raises a clear error when called; importing any
# other op raises ModuleNotFoundError, which is what mmseg's own ``try: from mmcv.ops import X except
# ModuleNotFoundError`` guards (cc_head, point_head, psa_head, ...) expect when mmcv has no compiled ops.
# Nothing is done when mmcv has its compiled extension.
# ---------------------------------------------------------------------------------------------------------------------
def _mmcv_is_lite() -> bool:
    """True if mmcv is installed without its compiled extension (``mmcv._ext``)."""
    spec = importlib.util.find_spec('mmcv')
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        if any(name.startswith('_ext') and name.endswith(('.so', '.pyd')) for name in os.listdir(folder)):
            return False
    return True


def _missing_compiled_op(name: str) -> Callable:

    def op(*args, **kwargs):
        raise RuntimeError(f'mmcv.ops.{name} is a compiled op; mmcv-lite has none. Install full mmcv (with its '
                           'CUDA/C++ ops) to use it. SegFormer inference does not need it.')

    op.__name__ = name
    return op


class _MmcvOpsLiteFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``mmcv.ops`` (and ``mmcv.ops.point_sample``) when mmcv is installed without compiled ops."""

    def __init__(self, mmcv_folder: str) -> None:
        self.ops_folder = osp.join(mmcv_folder, 'ops')

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102 (importlib protocol)
        if fullname == 'mmcv.ops':
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        if fullname == 'mmcv.ops.point_sample':
            return importlib.util.spec_from_file_location(fullname, osp.join(self.ops_folder, 'point_sample.py'))
        return None

    def create_module(self, spec):  # noqa: D102 (importlib protocol)
        return None

    def exec_module(self, module: types.ModuleType) -> None:  # noqa: D102 (importlib protocol)
        module.__path__ = []
        module.__doc__ = 'mmcv.ops served by desra_basicsr.compat for mmcv-lite (no compiled ops).'
        point_sample_module = importlib.import_module('mmcv.ops.point_sample')
        module.point_sample = point_sample_module.point_sample
        module.bilinear_grid_sample = point_sample_module.bilinear_grid_sample
        module.sigmoid_focal_loss = _missing_compiled_op('sigmoid_focal_loss')
        module.__getattr__ = _missing_ops_attribute


def _missing_ops_attribute(name: str):
    if name.startswith('_'):
        raise AttributeError(name)
    raise ModuleNotFoundError(f'mmcv.ops.{name} needs compiled mmcv ops; mmcv-lite has none', name='mmcv._ext')


def fix_mmcv_lite_ops() -> bool:
    """Make ``import mmcv.ops`` work with mmcv-lite (pure-PyTorch ``point_sample`` only).

    Returns:
        bool: True if the import hook was installed.
    """
    if not _mmcv_is_lite() or 'mmcv.ops' in sys.modules:
        return False
    mmcv_folder = importlib.util.find_spec('mmcv').submodule_search_locations[0]
    sys.meta_path.insert(0, _MmcvOpsLiteFinder(mmcv_folder))
    return True


# ---------------------------------------------------------------------------------------------------------------------
# torch >= 2.6 defaults ``torch.load(weights_only=True)``. mmengine 0.10.7's ``load_checkpoint`` calls
# ``torch.load`` without ``weights_only``, and OpenMMLab checkpoints (the released SegFormer ADE20K ones among them)
# keep numpy scalars/arrays in their ``meta``/``message_hub`` entries, so loading fails with
# "Weights only load failed ... Unsupported global: numpy...". Allow exactly the numpy reconstructors those pickles
# name (both the numpy 1.x ``numpy.core`` and numpy 2.x ``numpy._core`` spellings); nothing else is unlocked.
# ---------------------------------------------------------------------------------------------------------------------
def numpy_safe_globals() -> list:
    """The numpy objects that OpenMMLab checkpoint metadata pickles reference.

    Returns:
        list: Entries for ``torch.serialization.add_safe_globals``.
    """
    import numpy as np
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    entries = [np.ndarray, np.dtype, multiarray.scalar, multiarray._reconstruct]
    for module_name in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries += [(multiarray.scalar, f'{module_name}.scalar'),
                    (multiarray._reconstruct, f'{module_name}._reconstruct')]
    for scalar_type in (np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint8,
                        np.bool_):
        entries.append(type(np.dtype(scalar_type)))
    return entries


def fix_torch_load_numpy_globals() -> bool:
    """Allow the numpy globals of OpenMMLab checkpoints under ``torch.load(weights_only=True)``.

    Returns:
        bool: True if the globals were registered (False on torch without ``add_safe_globals``).
    """
    import torch
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return False
    torch.serialization.add_safe_globals(numpy_safe_globals())
    return True


# ---------------------------------------------------------------------------------------------------------------------
# BasicSR 1.4.2 on machines without CUDA:
# * ``basicsr.train.load_resume_state`` calls ``torch.cuda.current_device()`` to map the state to the GPU
#   (RuntimeError / AssertionError "Torch not compiled with CUDA" or "no NVIDIA driver" on CPU);
# * ``basicsr.utils.dist_util._init_dist_pytorch`` calls ``torch.cuda.set_device(rank % device_count())``
#   (ZeroDivisionError on CPU) and always uses the backend BasicSR passes (``nccl``, CUDA only);
# * ``BaseModel.model_to_device`` wraps DDP with ``device_ids=[torch.cuda.current_device()]``.
# The replacements call BasicSR's originals whenever CUDA is in use, and do the CPU equivalent otherwise
# (map to CPU, gloo, DDP without device_ids).
# ---------------------------------------------------------------------------------------------------------------------
def _basicsr_needs_cpu_fixes() -> bool:
    if importlib.util.find_spec('basicsr') is None:
        return False
    from basicsr.version import __version__ as basicsr_version
    major, minor, patch = (int(p) for p in basicsr_version.split('+')[0].split('.')[:3])
    return (major, minor, patch) <= (1, 4, 2)


def resolve_dist_backend(backend: Optional[str]) -> str:
    """The torch.distributed backend to use: ``$DESRA_DIST_BACKEND``, else ``backend``, nccl needing CUDA.

    Args:
        backend (str | None): Backend requested by the caller (BasicSR passes ``'nccl'``).

    Returns:
        str: ``backend`` or the environment override; ``'gloo'`` in place of BasicSR's default ``'nccl'`` when
        CUDA is absent and nobody asked for nccl.

    Raises:
        DesraSettingsError: ``$DESRA_DIST_BACKEND`` (the option file's ``dist_params.backend``) asks for nccl and
            CUDA is not available: training on the CPU instead would be silent and many times slower.
    """
    import torch

    from desra_basicsr.errors import DesraSettingsError
    requested = os.environ.get(DIST_BACKEND_ENV)
    backend = requested or backend or 'nccl'
    if backend == 'nccl' and not torch.cuda.is_available():
        if requested:
            raise DesraSettingsError(
                f'dist_params.backend is nccl but CUDA is not available to torch {torch.__version__} (built for CUDA '
                f'{torch.version.cuda}): no GPU visible (CUDA_VISIBLE_DEVICES?) or an NVIDIA driver too old for '
                'this CUDA build. Fix the driver, or set dist_params.backend: gloo to train on the CPU.')
        return 'gloo'
    return backend


def resume_state_file(opt: dict) -> Optional[str]:
    """The training state BasicSR's ``load_resume_state`` loads, by its rule; None for a new run.

    With ``auto_resume`` the newest ``experiments/<name>/training_states/<iter>.state`` under the working directory
    (``path.resume_state`` is then ignored, and a run without states starts afresh), else ``path.resume_state``.
    Files whose name is not an iteration number are not states.

    Args:
        opt (dict): Options with ``name``, ``path`` and ``auto_resume``.

    Returns:
        str | None: The state file.
    """
    if opt.get('auto_resume'):
        folder = osp.join('experiments', str(opt.get('name')), 'training_states')
        states = [f for f in os.listdir(folder) if f.endswith('.state')] if osp.isdir(folder) else []
        iters = [float(f[:-len('.state')]) for f in states if f[:-len('.state')].replace('.', '', 1).isdigit()]
        return osp.join(folder, f'{max(iters):.0f}.state') if iters else None
    return (opt.get('path') or {}).get('resume_state') or None


def fix_basicsr_cpu_paths() -> bool:
    """Patch BasicSR's resume, ``init_dist`` and DDP wrapping so CPU (gloo) runs work.

    Returns:
        bool: True if BasicSR was patched.
    """
    if not _basicsr_needs_cpu_fixes():
        return False
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    import basicsr.train
    import basicsr.utils.dist_util as dist_util
    from basicsr.models.base_model import BaseModel
    from basicsr.utils import check_resume

    original_init = dist_util._init_dist_pytorch
    original_load_resume_state = basicsr.train.load_resume_state
    original_model_to_device = BaseModel.model_to_device

    def _init_dist_pytorch(backend: str = 'nccl', **kwargs) -> None:
        backend = resolve_dist_backend(backend)
        if torch.cuda.is_available():
            return original_init(backend, **kwargs)
        dist.init_process_group(backend=backend, **kwargs)

    def load_resume_state(opt: dict):
        if torch.cuda.is_available() and opt.get('num_gpu', 0) != 0:
            return original_load_resume_state(opt)
        # BasicSR's own logic, with the state mapped to the CPU instead of ``torch.cuda.current_device()``.
        # (with --auto_resume, path.resume_state is ignored and a run with no saved state starts afresh, as upstream)
        resume_state_path = resume_state_file(opt)
        if opt['auto_resume'] and resume_state_path is not None:
            opt['path']['resume_state'] = resume_state_path
        if resume_state_path is None:
            return None
        resume_state = torch.load(resume_state_path, map_location='cpu')
        check_resume(opt, resume_state['iter'])
        return resume_state

    def model_to_device(self, net):
        if self.device.type == 'cuda' or not self.opt['dist']:
            return original_model_to_device(self, net)
        net = net.to(self.device)
        return DistributedDataParallel(net, find_unused_parameters=self.opt.get('find_unused_parameters', False))

    dist_util._init_dist_pytorch = _init_dist_pytorch
    basicsr.train.load_resume_state = load_resume_state
    BaseModel.model_to_device = model_to_device
    return True


# ---------------------------------------------------------------------------------------------------------------------
# mmsegmentation 1.2.2 (mmseg/models/losses/cross_entropy_loss.py, ``cross_entropy``): with ``class_weight`` and the
# default mean reduction, the average factor is computed as ``class_weight[cls] for cls in label`` before the ignored
# pixels are masked, so any label equal to ``ignore_index`` (255: the padding ``RandomCrop``/``Pad`` give an image
# smaller than the crop, e.g. after a ``Resize`` by 0.5) raises "IndexError: index 255 is out of bounds" (upstream
# issues open-mmlab/mmsegmentation#3734 and #3831, fix proposed in #3457, unmerged). The replacement computes the same
# factor with the ignored pixels weighing 0, which is what ``F.cross_entropy(weight=..., ignore_index=...)`` divides
# by, and passes it to mmseg's own function. Nothing is done when mmseg's function already handles ignored labels.
# ---------------------------------------------------------------------------------------------------------------------
def _mmseg_cross_entropy_fails_on_ignored_labels(cross_entropy: Callable) -> bool:
    """Whether mmseg's ``cross_entropy`` fails on an ignored label when class weights are given."""
    import torch
    pred, label = torch.zeros(1, 2, 1, 2), torch.tensor([[[0, 255]]])
    try:
        cross_entropy(pred, label, class_weight=torch.ones(2), ignore_index=255, avg_non_ignore=True)
    except IndexError:
        return True
    return False


def fix_mmseg_class_weight_ignore_index() -> bool:
    """Make mmseg's class-weighted cross-entropy skip ignored labels when it averages.

    Returns:
        bool: True if ``mmseg.models.losses.cross_entropy_loss.cross_entropy`` was replaced.
    """
    if importlib.util.find_spec('mmseg') is None:
        return False
    import mmseg.models.losses.cross_entropy_loss as ce_module
    original = ce_module.cross_entropy
    if not _mmseg_cross_entropy_fails_on_ignored_labels(original):
        return False

    def cross_entropy(pred,
                      label,
                      weight=None,
                      class_weight=None,
                      reduction='mean',
                      avg_factor=None,
                      ignore_index=-100,
                      avg_non_ignore=False):
        if class_weight is not None and avg_factor is None and reduction == 'mean':
            ignored = label == ignore_index
            avg_factor = class_weight[label.masked_fill(ignored, 0)].masked_fill(ignored, 0).sum()
        return original(
            pred,
            label,
            weight=weight,
            class_weight=class_weight,
            reduction=reduction,
            avg_factor=avg_factor,
            ignore_index=ignore_index,
            avg_non_ignore=avg_non_ignore)

    cross_entropy.__doc__ = original.__doc__
    ce_module.cross_entropy = cross_entropy
    losses = sys.modules.get('mmseg.models.losses')
    if losses is not None and getattr(losses, 'cross_entropy', None) is original:
        losses.cross_entropy = cross_entropy
    return True


#: Every fix by name, in the order :func:`apply_all` applies them.
FIXES: Dict[str, Callable[[], bool]] = {
    'torchvision_functional_tensor': fix_torchvision_functional_tensor,
    'mmcv_lite_ops': fix_mmcv_lite_ops,
    'torch_load_numpy_globals': fix_torch_load_numpy_globals,
    'basicsr_cpu_paths': fix_basicsr_cpu_paths,
    'mmseg_class_weight_ignore_index': fix_mmseg_class_weight_ignore_index,
}


def apply(name: str) -> bool:
    """Apply one fix of :data:`FIXES` (once per process).

    Args:
        name (str): The fix's name.

    Returns:
        bool: Whether it patched something.
    """
    return _once(name, FIXES[name])


def apply_all() -> Dict[str, bool]:
    """Apply every fix (idempotent). Imports BasicSR; :mod:`desra_basicsr.bootstrap` applies each fix only when the
    package it concerns is imported.

    Returns:
        dict[str, bool]: Fix name to "patched".
    """
    for name in FIXES:
        apply(name)
    return applied_fixes()
