"""DeSRA for BasicSR: detect GAN-SR inference artifacts and fine-tune them away.

Importing this package is cheap: it imports neither torch nor BasicSR. It installs the import hook of
:mod:`desra_basicsr.bootstrap`, which applies the compatibility fixes of :mod:`desra_basicsr.compat` around the
imports of BasicSR and mmengine and registers the plugin's datasets, transforms, models and metrics in BasicSR's
registries by their first lookup. Scripts that use BasicSR import ``desra_basicsr`` first, as before.
"""
from desra_basicsr import bootstrap
from desra_basicsr.version import __version__

bootstrap.install()

__all__ = ['__version__']
