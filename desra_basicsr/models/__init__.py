"""Models: every ``*_model.py`` here is imported so its classes register in MODEL_REGISTRY."""
from desra_basicsr.utils import import_modules_with_suffix

_model_modules = import_modules_with_suffix(__name__, __file__, '_model')
