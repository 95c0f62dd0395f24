"""Validation metrics: every ``*_metric.py`` here is imported so its functions register in METRIC_REGISTRY."""
from desra_basicsr.utils import import_modules_with_suffix

_metric_modules = import_modules_with_suffix(__name__, __file__, '_metric')
