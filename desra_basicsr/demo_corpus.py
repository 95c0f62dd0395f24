"""The demo's real-photo corpus: the manifest of freely licensed photographs and its fixed three-way split.

``demo_data/manifest.csv`` lists every photo once, with its split, the package it comes from (scikit-image's
bundled photos, Debian's ``lomiri-wallpapers-16.04``, ``lomiri-wallpapers-20.04``, ``mate-backgrounds`` and
``opencv-doc``), the file inside that package, its author and its licence. The split is made once, in the
manifest, and never changes (DeSRA section 4: fine-tune on one set of images, score on images it never saw):

* ``train``: the photos the demo's MSE-SR / GAN-SR models were trained on (``scripts/prepare_demo_data.py``);
* ``finetune``: real LR inputs of the DeSRA fine-tune (``demo_data/finetune_lr/``);
* ``heldout``: real LR inputs that only the evaluation sees (``demo_data/heldout_lr/``).
"""
import csv
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Sequence

from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.image_io import list_images, stem

SPLITS = ('train', 'finetune', 'heldout')
FIELDS = ('name', 'split', 'source_package', 'source_file', 'author', 'licence')


@dataclass(frozen=True)
class Photo:
    """One manifest row.

    Attributes:
        name (str): File stem used everywhere (``<name>.png``).
        split (str): ``train``, ``finetune`` or ``heldout``.
        source_package (str): ``scikit-image`` or the Debian package holding the photo.
        source_file (str): File name inside ``skimage/data`` or the absolute path the Debian package installs.
        author (str): Photographer or rights holder.
        licence (str): Licence of the photo.
    """
    name: str
    split: str
    source_package: str
    source_file: str
    author: str
    licence: str


def read_manifest(path: str) -> List[Photo]:
    """Read and validate the corpus manifest.

    Args:
        path (str): ``manifest.csv`` with the columns of :data:`FIELDS`.

    Returns:
        list[Photo]: The photos in file order.

    Raises:
        DesraInputError: If the file is missing, a column or value is missing, a split is unknown or a name repeats.
    """
    if not osp.isfile(path):
        raise DesraInputError(f'{path}: corpus manifest not found')
    with open(path, 'r', encoding='utf-8', newline='') as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise DesraInputError(f'{path}: expected the columns {",".join(FIELDS)}, got {reader.fieldnames}')
        photos = []
        for line, row in enumerate(reader, start=2):
            if any(not (row.get(k) or '').strip() for k in FIELDS):
                raise DesraInputError(f'{path}:{line}: every column needs a value')
            if row['split'] not in SPLITS:
                raise DesraInputError(f'{path}:{line}: unknown split {row["split"]!r} (one of {", ".join(SPLITS)})')
            photos.append(Photo(**{k: row[k].strip() for k in FIELDS}))
    names = [p.name for p in photos]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DesraInputError(f'{path}: names listed more than once: {", ".join(repeated)}')
    return photos


def split_names(photos: Sequence[Photo]) -> Dict[str, List[str]]:
    """The photo names of each split.

    Args:
        photos (Sequence[Photo]): Manifest rows.

    Returns:
        dict[str, list[str]]: ``{split: sorted names}`` for every split in :data:`SPLITS`.
    """
    return {split: sorted(p.name for p in photos if p.split == split) for split in SPLITS}


def check_disjoint(finetune_dir: str, heldout_dir: str) -> None:
    """Refuse a fine-tune set that shares photos with the held-out set.

    Args:
        finetune_dir (str): Folder of the fine-tune set's LR images.
        heldout_dir (str): Folder of the held-out set's LR images.

    Raises:
        DesraSettingsError: If the folders are the same or share a file stem.
    """
    if osp.realpath(finetune_dir) == osp.realpath(heldout_dir):
        raise DesraSettingsError(f'{finetune_dir}: the fine-tune set and the held-out set are the same folder; the '
                                 'held-out images must be ones the fine-tune never sees')
    shared = sorted({stem(n) for n in list_images(finetune_dir)} & {stem(n) for n in list_images(heldout_dir)})
    if shared:
        raise DesraSettingsError(f'{finetune_dir} and {heldout_dir} share {len(shared)} image(s) '
                                 f'({", ".join(shared[:5])}{", ..." if len(shared) > 5 else ""}); the held-out images '
                                 'must be ones the fine-tune never sees')
