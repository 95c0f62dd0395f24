"""Network architectures: every ``*_arch.py`` here is imported so its classes register in ARCH_REGISTRY."""
from desra_basicsr.utils import import_modules_with_suffix

_arch_modules = import_modules_with_suffix(__name__, __file__, '_arch')
