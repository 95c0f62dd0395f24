"""The training sources of ``desra localizer train``: what each holds, its weight, and its checked images.

A source is one of three kinds (docs/localizer-fusion.md):

* ``synthetic``: a folder of ``desra zoo synth`` (its finished items, read by
  :func:`desra_basicsr.jobs.zoo_samples.synthetic_samples`): images with painted artifacts and their exact masks;
* ``generator``: a folder of a generator's outputs and the folder of their DeSRA-det masks (``desra detect``),
  paired by file stem;
* ``clean``: a folder of artifact-free images (e.g. the DeSRA pseudo-GT), trained on as all clean.

Each has a weight: training draws a source with probability ``weight / sum of the weights``, then one of its images
(:class:`desra_basicsr.localizer.sampler.WeightedSourceSampler`). On the command line a source is
``--source KIND PATH [MASKS] [weight=W]``::

    desra localizer train --out localizer \\
        --source synthetic zoo/synth weight=2 \\
        --source generator zoo/gan_a/sr zoo/gan_a/masks \\
        --source clean zoo/gan_a/pseudo_gt weight=0.5
"""
import math
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.settings import normalise_path

#: The kinds of training source.
SOURCE_KINDS = ('synthetic', 'generator', 'clean')
#: Largest source weight (weights are relative; the bound keeps their sum finite).
MAX_SOURCE_WEIGHT = 1e6
#: The ``weight=W`` token of ``--source``.
WEIGHT_PREFIX = 'weight='
#: The command-line form of a source, for messages.
SOURCE_USAGE = '--source KIND PATH [MASKS] [weight=W] (KIND: synthetic DIR, generator IMAGES MASKS, or clean DIR)'


@dataclass(frozen=True)
class TrainingSource:
    """One training source, checked and with its paths normalised when it is made.

    Attributes:
        kind (str): One of :data:`SOURCE_KINDS`.
        path (str): The ``desra zoo synth`` folder, the generator's outputs or the clean images.
        masks (str | None): The generator's DeSRA-det masks (``generator`` only).
        weight (float): How often the source is drawn relative to the others, in (0, :data:`MAX_SOURCE_WEIGHT`].
        legacy (bool): Given as ``--gan`` / ``--masks`` or ``--clean`` rather than ``--source`` (messages name those
            options; the source is the same).

    Raises:
        DesraSettingsError: For an unknown kind, a missing or superfluous mask folder, an empty path, or a weight
            that is not a finite number in the range.
    """
    kind: str
    path: str
    masks: Optional[str] = None
    weight: float = 1.0
    legacy: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise DesraSettingsError(f'--source {self.kind}: unknown kind; choose from {", ".join(SOURCE_KINDS)} '
                                     f'({SOURCE_USAGE})')
        if (self.kind == 'generator') != (self.masks is not None):
            need = 'needs IMAGES and MASKS folders' if self.kind == 'generator' else 'takes one folder'
            raise DesraSettingsError(f'{self.describe()}: a {self.kind} source {need} ({SOURCE_USAGE})')
        for path in (self.path, self.masks):
            if path is not None and (not str(path) or '\0' in str(path)):
                raise DesraSettingsError(f'{self.describe()}: give the path of a folder ({SOURCE_USAGE})')
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or \
                not 0 < weight <= MAX_SOURCE_WEIGHT:
            raise DesraSettingsError(f'{self.describe()}: the weight must be a finite number in '
                                     f'(0, {MAX_SOURCE_WEIGHT:g}]')
        object.__setattr__(self, 'path', normalise_path(self.path))
        if self.masks is not None:
            object.__setattr__(self, 'masks', normalise_path(self.masks))
        object.__setattr__(self, 'weight', float(weight))

    def describe(self) -> str:
        """The source as ``--source`` gives it, for messages.

        Returns:
            str: E.g. ``--source generator sr/gan masks weight=2.0``, or ``--gan sr/gan --masks masks``.
        """
        if self.legacy:
            return f'--gan {self.path} --masks {self.masks}' if self.masks is not None else f'--clean {self.path}'
        folders = ' '.join(str(p) for p in (self.path, self.masks) if p is not None)
        return f'--source {self.kind} {folders} {WEIGHT_PREFIX}{self.weight}'

    def record(self) -> Dict[str, object]:
        """The source as ``summary.json`` records it (a changed source is refused unless ``--overwrite``).

        Returns:
            dict: ``kind``, ``path``, ``masks`` and ``weight``.
        """
        return {'kind': self.kind, 'path': self.path, 'masks': self.masks, 'weight': self.weight}

    def folders(self) -> Tuple[str, ...]:
        """The source's input folders (an output folder may be none of them, nor inside one).

        Returns:
            tuple[str, ...]: The folder, and the mask folder of a generator.
        """
        return (self.path, ) if self.masks is None else (self.path, self.masks)


def parse_source(tokens: Sequence[str]) -> TrainingSource:
    """A source from the tokens of one ``--source`` option: ``KIND PATH [MASKS] [weight=W]``.

    Args:
        tokens (Sequence[str]): The option's values.

    Returns:
        TrainingSource: The checked source.

    Raises:
        DesraSettingsError: For a malformed option (see :class:`TrainingSource` for the values refused).
    """
    tokens = list(tokens)
    weight: float = 1.0
    if tokens and tokens[-1].startswith(WEIGHT_PREFIX):
        text = tokens.pop()[len(WEIGHT_PREFIX):]
        try:
            weight = float(text)
        except ValueError:
            raise DesraSettingsError(f'--source {" ".join(tokens)} {WEIGHT_PREFIX}{text}: the weight is not a '
                                     'number') from None
    if len(tokens) < 2 or len(tokens) > 3:
        raise DesraSettingsError(f'--source {" ".join(tokens)}: give {SOURCE_USAGE}')
    return TrainingSource(tokens[0], tokens[1], tokens[2] if len(tokens) == 3 else None, weight)


@dataclass(frozen=True)
class SourceData:
    """A source with its checked training images.

    Attributes:
        source (TrainingSource): The source.
        img_dir (str): The folder of its images.
        mask_dir (str | None): The folder of their masks (None: clean images).
        names (tuple[str, ...] | None): The stems trained on (a synthetic folder's finished items; None: all).
        masks (tuple[str, ...]): The mask files (none for clean images).
        images (tuple[str, ...]): The image files.
        mask_channel (int | None): Channel of colour masks that holds the mask (a generator's masks only).
    """
    source: TrainingSource
    img_dir: str
    mask_dir: Optional[str]
    names: Optional[Tuple[str, ...]]
    masks: Tuple[str, ...]
    images: Tuple[str, ...]
    mask_channel: Optional[int] = None


def _require_images(folder: str, source: TrainingSource) -> None:
    from desra_basicsr.image_io import IMAGE_EXTENSIONS, list_images
    if not osp.isdir(folder):
        raise DesraSettingsError(f'{source.describe()}: {folder} is not a folder')
    if not list_images(folder):
        raise DesraSettingsError(f'{source.describe()}: {folder} holds no image ({", ".join(IMAGE_EXTENSIONS)})')


def load_source(source: TrainingSource, mask_channel: Optional[int] = None) -> SourceData:
    """Check a source's folders and every image and mask in them.

    Args:
        source (TrainingSource): The source.
        mask_channel (int | None): Channel of colour masks that holds the mask (RGBA order), for a generator's
            masks; a synthetic folder's masks, which ``desra zoo synth`` writes in grey, are read as they are.

    Returns:
        SourceData: Its images and masks.

    Raises:
        DesraSettingsError: If a folder is missing or holds no image, a synthetic folder is not one, or a file is
            unreadable, unpaired, breaks the mask rule or differs in size from its partner (the message names the
            source and the file).
    """
    from desra_basicsr.image_io import stem
    from desra_basicsr.jobs.zoo_samples import SYNTH_IMAGE_DIR, SYNTH_MASK_DIR, synthetic_samples
    from desra_basicsr.localizer.dataset import list_artifact_pairs, list_clean_images

    names = None
    if source.kind != 'generator':
        mask_channel = None
    if source.kind == 'synthetic':
        if not osp.isdir(source.path):
            raise DesraSettingsError(f'{source.describe()}: {source.path} is not a folder')
        try:
            names = tuple(stem(sample.image) for sample in synthetic_samples(source.path))
        except DesraSettingsError as err:
            raise DesraSettingsError(f'{source.describe()}: {err}') from err
        img_dir, mask_dir = osp.join(source.path, SYNTH_IMAGE_DIR), osp.join(source.path, SYNTH_MASK_DIR)
    else:
        img_dir, mask_dir = source.path, source.masks
        for folder in source.folders():
            _require_images(folder, source)
    try:
        if mask_dir is None:
            images, masks = tuple(list_clean_images(img_dir)), ()
        else:
            pairs = list_artifact_pairs(img_dir, mask_dir, names, mask_channel)
            images, masks = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    except DesraInputError as err:
        raise DesraSettingsError(f'{source.describe()}: {err}') from err
    return SourceData(source, img_dir, mask_dir, names, masks, images, mask_channel)


def training_artifact_weight(data: Sequence[SourceData]) -> float:
    """The balanced artifact-class weight of the pixels training draws from the sources.

    Each source's share of artifact pixels, weighted by how often the source is drawn, gives the share training
    sees; :func:`desra_basicsr.localizer.dataset.balanced_artifact_weight` turns it into the weight. For a generator
    and its pseudo-GT as a clean source of the same weight (as many pixels) this is the ratio over all their pixels.

    Args:
        data (Sequence[SourceData]): The checked sources.

    Returns:
        float: The weight.

    Raises:
        DesraInputError: If a file cannot be read.
    """
    from desra_basicsr.localizer.dataset import artifact_fraction, balanced_artifact_weight
    total = sum(part.source.weight for part in data)
    fraction = sum(part.source.weight / total * artifact_fraction(part.masks, part.mask_channel) for part in data
                   if part.masks)
    return balanced_artifact_weight(fraction)


def source_roles(sources: Sequence[TrainingSource]) -> Dict[str, str]:
    """The sources' folders by a role naming the option, for the output-folder check.

    Args:
        sources (Sequence[TrainingSource]): The sources.

    Returns:
        dict[str, str]: E.g. ``{'source #1 generator': 'sr/gan', 'source #1 generator masks': 'masks'}``.
    """
    roles: Dict[str, str] = {}
    for i, source in enumerate(sources, 1):
        roles[f'source #{i} {source.kind}'] = source.path
        if source.masks is not None:
            roles[f'source #{i} {source.kind} masks'] = source.masks
    return roles


def input_files(data: Sequence[SourceData]) -> List[str]:
    """Every image and mask of the sources (the inputs a finished training is checked against for changes).

    Args:
        data (Sequence[SourceData]): The checked sources.

    Returns:
        list[str]: The files, source by source.
    """
    return [path for part in data for path in part.images + part.masks]
