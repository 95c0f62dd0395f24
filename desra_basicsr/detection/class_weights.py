"""DeSRA-det step 3: per-class weights of the semantic-aware adjustment (paper section 3.1).

A table gives one weight ``w_k = 1 / A_k`` per ADE20K class; the adjusted map is ``clip(D * w[label], 0, 1)``.
The default table is the DeSRA authors' released one (``tables/desra_release_ade20k.txt``, ``name--idx`` lines,
``w = 20 / (20 - idx)``). Users may pass their own table as

* the same ``name--idx`` text format (``#`` starts a comment), or
* a YAML / JSON mapping ``class name -> weight`` (``.yml``, ``.yaml``, ``.json``).

Every one of the 150 ADE20K classes must appear exactly once with a positive number; anything else is an error
naming the file.
"""
import json
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import yaml

from desra_basicsr.errors import DesraInputError

#: The 150 ADE20K classes in label order (mmsegmentation's ``ADE20KDataset.METAINFO['classes']``, whose
#: ``'bed '`` carries a trailing space that is dropped here).
ADE20K_CLASSES: Tuple[str, ...] = (
    'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road', 'bed', 'windowpane', 'grass', 'cabinet',
    'sidewalk', 'person', 'earth', 'door', 'table', 'mountain', 'plant', 'curtain', 'chair', 'car', 'water',
    'painting', 'sofa', 'shelf', 'house', 'sea', 'mirror', 'rug', 'field', 'armchair', 'seat', 'fence', 'desk',
    'rock', 'wardrobe', 'lamp', 'bathtub', 'railing', 'cushion', 'base', 'box', 'column', 'signboard',
    'chest of drawers', 'counter', 'sand', 'sink', 'skyscraper', 'fireplace', 'refrigerator', 'grandstand', 'path',
    'stairs', 'runway', 'case', 'pool table', 'pillow', 'screen door', 'stairway', 'river', 'bridge', 'bookcase',
    'blind', 'coffee table', 'toilet', 'flower', 'book', 'hill', 'bench', 'countertop', 'stove', 'palm',
    'kitchen island', 'computer', 'swivel chair', 'boat', 'bar', 'arcade machine', 'hovel', 'bus', 'towel', 'light',
    'truck', 'tower', 'chandelier', 'awning', 'streetlight', 'booth', 'television receiver', 'airplane',
    'dirt track', 'apparel', 'pole', 'land', 'bannister', 'escalator', 'ottoman', 'bottle', 'buffet', 'poster',
    'stage', 'van', 'ship', 'fountain', 'conveyer belt', 'canopy', 'washer', 'plaything', 'swimming pool', 'stool',
    'barrel', 'basket', 'waterfall', 'tent', 'bag', 'minibike', 'cradle', 'oven', 'ball', 'food', 'step', 'tank',
    'trade name', 'microwave', 'pot', 'animal', 'bicycle', 'lake', 'dishwasher', 'screen', 'blanket', 'sculpture',
    'hood', 'sconce', 'vase', 'traffic light', 'tray', 'ashcan', 'fan', 'pier', 'crt screen', 'plate', 'monitor',
    'bulletin board', 'shower', 'radiator', 'glass', 'clock', 'flag')

#: The default table: the DeSRA authors' release, shipped as package data.
DEFAULT_TABLE = osp.join(osp.dirname(osp.abspath(__file__)), 'tables', 'desra_release_ade20k.txt')

#: Number of bins of the released ``name--idx`` format: ``w = BINS / (BINS - idx)``.
RELEASE_BINS = 20


@dataclass(frozen=True)
class ClassWeights:
    """A validated class-weight table.

    Attributes:
        names (tuple[str, ...]): Class names in label order.
        weights (np.ndarray): ``(num_classes,)`` float32 weights, indexed by label.
        source (str): Where the table came from (file path).
    """
    names: Tuple[str, ...]
    weights: np.ndarray
    source: str

    @property
    def num_classes(self) -> int:
        """Number of classes in the table."""
        return len(self.names)


def _parse_release_text(path: str) -> Dict[str, float]:
    """Parse ``name--idx`` lines into ``name -> weight``."""
    weights: Dict[str, float] = {}
    with open(path, 'r', encoding='utf-8') as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.split('#', 1)[0].strip()
            if not line:
                continue
            name, sep, idx = line.rpartition('--')
            name = name.strip()
            if not sep or not name:
                raise DesraInputError(f'{path}: line {lineno}: expected "class name--idx", got {line!r}')
            try:
                bin_idx = int(idx.strip())
            except ValueError:
                raise DesraInputError(f'{path}: line {lineno}: idx of {name!r} is not an integer: {idx.strip()!r}')
            if not 0 <= bin_idx < RELEASE_BINS:
                raise DesraInputError(
                    f'{path}: line {lineno}: idx of {name!r} must be in [0, {RELEASE_BINS - 1}], got {bin_idx}')
            if name in weights:
                raise DesraInputError(f'{path}: line {lineno}: class {name!r} appears twice')
            weights[name] = RELEASE_BINS / (RELEASE_BINS - bin_idx)
    return weights


def _parse_mapping(path: str) -> Dict[str, float]:
    """Parse a YAML/JSON mapping ``name -> weight``."""
    try:
        with open(path, 'r', encoding='utf-8') as f:
            data = json.load(f) if path.lower().endswith('.json') else yaml.safe_load(f)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise DesraInputError(f'{path}: cannot parse the class table: {err}')
    if not isinstance(data, dict):
        raise DesraInputError(f'{path}: the class table must be a mapping "class name: weight"')
    weights: Dict[str, float] = {}
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DesraInputError(f'{path}: weight of class {name!r} is not a number: {value!r}')
        weights[str(name).strip()] = float(value)
    return weights


def load_class_weights(path: Optional[str] = None, class_names: Tuple[str, ...] = ADE20K_CLASSES) -> ClassWeights:
    """Load and validate a class-weight table.

    Args:
        path (str | None): Table file (``name--idx`` text, YAML or JSON); None loads the DeSRA release table.
        class_names (tuple[str, ...]): The segmenter's classes in label order (default ADE20K's 150).

    Returns:
        ClassWeights: The table, in label order.

    Raises:
        DesraInputError: If the file is missing or malformed, names an unknown class, misses a class, or holds a
            non-numeric, non-finite or non-positive weight.
    """
    path = DEFAULT_TABLE if path is None else path
    if not osp.isfile(path):
        raise DesraInputError(f'{path}: class table file not found')
    if path.lower().endswith(('.yml', '.yaml', '.json')):
        weights = _parse_mapping(path)
    else:
        weights = _parse_release_text(path)
    known = set(class_names)
    unknown = sorted(set(weights) - known)
    if unknown:
        raise DesraInputError(f'{path}: unknown class names {unknown} (expected the {len(class_names)} ADE20K classes)')
    missing = [name for name in class_names if name not in weights]
    if missing:
        raise DesraInputError(f'{path}: {len(missing)} classes missing from the table: {missing}')
    bad = {name: w for name, w in weights.items() if not np.isfinite(w) or w <= 0}
    if bad:
        raise DesraInputError(f'{path}: weights must be finite and positive, got {bad}')
    table = np.array([weights[name] for name in class_names], dtype=np.float32)
    return ClassWeights(names=tuple(class_names), weights=table, source=path)


def apply_class_weights(d_map: np.ndarray, labels: np.ndarray, table: ClassWeights) -> np.ndarray:
    """Semantic-aware adjustment: ``clip(D * w[label], 0, 1)``.

    Args:
        d_map (np.ndarray): ``HxW`` indicator map.
        labels (np.ndarray): ``HxW`` integer class labels of the same size.
        table (ClassWeights): Weights.

    Returns:
        np.ndarray: ``HxW`` float32 adjusted map.

    Raises:
        ValueError: If the sizes differ or a label is outside the table.
    """
    if d_map.shape != labels.shape:
        raise ValueError(f'indicator map {d_map.shape} and label map {labels.shape} differ in size')
    if labels.size and (labels.min() < 0 or labels.max() >= table.num_classes):
        raise ValueError(f'labels must be in [0, {table.num_classes - 1}], got [{labels.min()}, {labels.max()}]')
    adjusted = d_map.astype(np.float32) * table.weights[labels]
    return np.clip(adjusted, 0, 1, out=adjusted)
