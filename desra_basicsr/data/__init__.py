"""Datasets and transforms: ``*_dataset.py`` and ``*_transform.py`` modules register on import."""
from desra_basicsr.utils import import_modules_with_suffix

_transform_modules = import_modules_with_suffix(__name__, __file__, '_transform')
_dataset_modules = import_modules_with_suffix(__name__, __file__, '_dataset')
