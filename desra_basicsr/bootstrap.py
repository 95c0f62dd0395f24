"""What ``import desra_basicsr`` sets up: compatibility fixes and registration, each exactly when it is needed.

Importing the package stays cheap (no torch, no BasicSR), so ``desra --help`` and ``import desra_basicsr.detection``
are quick, while every BasicSR user still gets the plugin ready before BasicSR does anything:

* an import hook on ``sys.meta_path`` applies the fixes of :mod:`desra_basicsr.compat` around the imports they
  concern: the torchvision alias right before ``basicsr`` is imported, BasicSR's CPU paths right after it, and the
  numpy globals of ``torch.load`` right before ``mmengine``, mmseg's class-weighted cross-entropy right after its
  module; the mmcv-lite ``mmcv.ops`` finder is installed at once (it imports nothing);
* the plugin's datasets, transforms, models and metrics are registered in BasicSR's registries by the first lookup
  in any of them (``get``, ``in``, ``keys``), which is how ``train_pipeline`` and ``build_model`` find a type. By
  then every import has finished, so no plugin module is half-initialised. :func:`register` does it explicitly.

So ``import desra_basicsr`` followed by BasicSR code works as before, in any order of imports, in user scripts and in
``desra_basicsr/train.py``. When BasicSR is imported before ``desra_basicsr``, :func:`install` applies the fixes
that can still help and prepares the registration at once.
"""
import importlib
import importlib.abc
import importlib.util
import sys
import types
from typing import Callable, Dict, List, Tuple

from desra_basicsr import compat

#: Plugin packages whose modules register components in BasicSR's registries.
PLUGIN_PACKAGES = ('desra_basicsr.data', 'desra_basicsr.models', 'desra_basicsr.metrics')

_registered = False


def register() -> None:
    """Import the plugin's registering packages (once); BasicSR's registries then hold the plugin's types."""
    global _registered
    if _registered:
        return
    _registered = True
    for name in PLUGIN_PACKAGES:
        importlib.import_module(name)


def _after_basicsr() -> None:
    """Fix BasicSR's CPU paths and make its registries register the plugin on their first lookup."""
    compat.apply('basicsr_cpu_paths')
    from basicsr.utils.registry import Registry
    if getattr(Registry, '_desra_lookup_hook', False):
        return

    def registering(method: Callable) -> Callable:

        def lookup(self, *args, **kwargs):
            register()
            return method(self, *args, **kwargs)

        lookup.__name__, lookup.__doc__ = method.__name__, method.__doc__
        return lookup

    for name in ('get', '__contains__', '__iter__', 'keys'):
        setattr(Registry, name, registering(getattr(Registry, name)))
    Registry._desra_lookup_hook = True


#: Package or module -> (callables run right before it is imported, callables run right after).
_HOOKS: Dict[str, Tuple[List[Callable[[], object]], List[Callable[[], object]]]] = {
    'basicsr': ([lambda: compat.apply('torchvision_functional_tensor')], [_after_basicsr]),
    'mmengine': ([lambda: compat.apply('torch_load_numpy_globals')], []),
    'mmseg.models.losses.cross_entropy_loss': ([], [lambda: compat.apply('mmseg_class_weight_ignore_index')]),
}


class _AfterLoader(importlib.abc.Loader):
    """Wraps a package's loader: runs callables once the package has executed; everything else is delegated."""

    def __init__(self, loader: importlib.abc.Loader, after: List[Callable[[], object]]) -> None:
        self._loader = loader
        self._after = after

    def create_module(self, spec):  # noqa: D102 (importlib protocol)
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:  # noqa: D102 (importlib protocol)
        self._loader.exec_module(module)
        for fn in self._after:
            fn()

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _ImportHook(importlib.abc.MetaPathFinder):
    """Runs :data:`_HOOKS` around the first import of each named package or module."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102 (importlib protocol)
        hooks = _HOOKS.pop(fullname, None)
        if hooks is None:
            return None
        before, after = hooks
        for fn in before:
            fn()
        spec = importlib.util.find_spec(fullname)  # the regular finders (this hook no longer knows the name)
        if spec is not None and spec.loader is not None and after:
            spec.loader = _AfterLoader(spec.loader, after)
        return spec


def install() -> None:
    """Install the import hook (idempotent); for packages imported already, run their hooks now."""
    compat.apply('mmcv_lite_ops')
    if any(isinstance(finder, _ImportHook) for finder in sys.meta_path):
        return
    for name in [n for n in _HOOKS if n in sys.modules]:
        before, after = _HOOKS.pop(name)
        for fn in before + after:
            fn()
    sys.meta_path.insert(0, _ImportHook())
