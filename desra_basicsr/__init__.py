"""DeSRA for BasicSR: detect GAN-SR inference artifacts and fine-tune them away.

Importing this package applies the compatibility fixes of :mod:`desra_basicsr.compat` (before BasicSR or
mmsegmentation are imported) and registers the plugin's archs, datasets, transforms, models and metrics in
BasicSR's registries.
"""
from desra_basicsr import compat

compat.apply_all()

from desra_basicsr import archs, data, metrics, models  # noqa: F401,E402  (registration side effects)
from desra_basicsr.version import __version__  # noqa: E402

__all__ = ['__version__']
