"""The pseudo-GT merge (paper eq. 10) as a transform that option files name by type.

The merge itself, :class:`~desra_basicsr.detection.pseudo_gt.ArtifactMaskTransform` (with its ``dilate`` and
``feather`` refinements), is pure array code; this module registers it in the plugin's ``TRANSFORM_REGISTRY`` and
builds it from an option block.

Example option block (inside a dataset's options)::

    transform:
      type: ArtifactMaskTransform
      dilate: 0      # pixels
      feather: 0     # pixels
"""
from desra_basicsr.detection.pseudo_gt import ArtifactMaskTransform
from desra_basicsr.registry import TRANSFORM_REGISTRY

TRANSFORM_REGISTRY.register(ArtifactMaskTransform)


def build_transform(opt: dict) -> ArtifactMaskTransform:
    """Build a transform from an option block ``{type: ..., **kwargs}`` without modifying ``opt``.

    Args:
        opt (dict): Options; ``type`` defaults to ``ArtifactMaskTransform``.

    Returns:
        ArtifactMaskTransform: The transform.
    """
    kwargs = dict(opt or {})
    transform_type = kwargs.pop('type', 'ArtifactMaskTransform')
    return TRANSFORM_REGISTRY.get(transform_type)(**kwargs)
