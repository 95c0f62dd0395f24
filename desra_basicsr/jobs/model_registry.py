"""The model registry of ``desra loop``: every accepted model version, in ``OUT/models/manifest.json``.

Version ``v0`` is the GAN-SR model the loop started from (the user's own files, not copied). Each later version is
a fine-tune the loop accepted: its generator (and discriminator) weights are copied into ``OUT/models/v<N>/`` and the
manifest records its parent, the data it was fine-tuned on (and the validation split it never trained on), its
scores and the reason it was accepted. Every version has an option file ``OUT/models/v<N>/sr.yml``
(``network_g`` + ``path.pretrain_network_g``), so any version is served by ``desra sr``::

    desra sr --opt OUT/models/v2/sr.yml --input new_lr --out new_sr

The manifest is rewritten atomically, and adding a version that is already there replaces it, so a loop killed
while registering registers the same version again when it resumes.
"""
import json
import os
import os.path as osp
import shutil
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

import yaml

from desra_basicsr.utils import atomic_write_path

#: Version of the manifest's layout.
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class ModelVersion:
    """One entry of the manifest.

    Attributes:
        version (str): ``v0``, ``v1``, ...
        parent (str | None): The version it was fine-tuned from (None for ``v0``).
        weights (str): Generator weights.
        netd_weights (str | None): Discriminator weights (the next fine-tune starts from them).
        opt (str): Option file serving the version with ``desra sr --opt``.
        round (int): The round that made it (0 for ``v0``).
        iterations (int | None): Fine-tune iterations of the chosen checkpoint.
        data (dict): ``train`` and ``validation``: the image names it was fine-tuned and validated on, each as
            ``<round>/<stem>``.
        scores (dict): The figures it was accepted on (validation, forgetting, batch and held-out comparisons).
        reason (str): Why it was accepted.
    """
    version: str
    parent: Optional[str]
    weights: str
    netd_weights: Optional[str]
    opt: str
    round: int = 0
    iterations: Optional[int] = None
    data: Dict[str, List[str]] = field(default_factory=dict)
    scores: Dict[str, Any] = field(default_factory=dict)
    reason: str = ''


def write_sr_options(path: str, network_g: Dict[str, Any], weights: str, param_key: Optional[str]) -> str:
    """Write an option file that serves a generator with ``desra sr --opt``.

    Args:
        path (str): Where to write it.
        network_g (dict): BasicSR ``network_g`` (``type`` and constructor arguments).
        weights (str): Generator weights.
        param_key (str | None): Checkpoint key (None: ``desra sr``'s default order).

    Returns:
        str: ``path``.
    """
    opt = {'network_g': dict(network_g), 'path': {'pretrain_network_g': weights}}
    if param_key:
        opt['path']['param_key_g'] = param_key
    with atomic_write_path(path) as tmp:
        with open(tmp, 'w') as f:
            f.write('# written by `desra loop`: serve this model version with desra sr --opt THIS_FILE\n')
            yaml.safe_dump(opt, f, sort_keys=False)
    return path


def copy_atomic(src: str, dst: str) -> str:
    """Copy a file so that ``dst`` is either absent or complete.

    Args:
        src (str): Source file.
        dst (str): Destination.

    Returns:
        str: ``dst``.
    """
    with atomic_write_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst


class ModelRegistry:
    """The versions of ``OUT/models/manifest.json``.

    Args:
        folder (str): ``OUT/models``.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = osp.join(folder, 'manifest.json')

    def versions(self) -> List[ModelVersion]:
        """The registered versions, oldest first (empty before the first is added)."""
        if not osp.isfile(self.path):
            return []
        with open(self.path, 'r', encoding='utf-8') as f:
            manifest = json.load(f)
        return [ModelVersion(**entry) for entry in manifest['versions']]

    def get(self, version: str) -> ModelVersion:
        """The entry of one version.

        Raises:
            KeyError: If it is not registered.
        """
        for entry in self.versions():
            if entry.version == version:
                return entry
        raise KeyError(f'{self.path}: no version {version}')

    def version_folder(self, version: str) -> str:
        """``OUT/models/<version>``."""
        return osp.join(self.folder, version)

    def add(self, entry: ModelVersion, current: str) -> None:
        """Add (or replace) a version and name the current one; the manifest is rewritten atomically.

        Args:
            entry (ModelVersion): The version.
            current (str): The version in use after this one was added.
        """
        kept = [v for v in self.versions() if v.version != entry.version]
        self.write(kept + [entry], current)

    def write(self, versions: List[ModelVersion], current: str) -> None:
        """Write the manifest.

        Args:
            versions (list[ModelVersion]): Every version, oldest first.
            current (str): The version in use.
        """
        os.makedirs(self.folder, exist_ok=True)
        manifest = {'format': MANIFEST_FORMAT, 'current': current, 'versions': [asdict(v) for v in versions]}
        with atomic_write_path(self.path) as tmp:
            with open(tmp, 'w', encoding='utf-8') as f:
                json.dump(manifest, f, indent=2)

    def current(self) -> Optional[str]:
        """The version in use (None before the first is added)."""
        if not osp.isfile(self.path):
            return None
        with open(self.path, 'r', encoding='utf-8') as f:
            return json.load(f)['current']
