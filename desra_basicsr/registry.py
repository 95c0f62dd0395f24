"""Registries the plugin adds beside BasicSR's five (dataset, arch, model, loss, metric)."""
from basicsr.utils.registry import Registry

# Transforms that option files name by ``type`` (e.g. ``ArtifactMaskTransform``).
TRANSFORM_REGISTRY = Registry('transform')
