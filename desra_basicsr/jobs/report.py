"""Report job: an HTML page and PNG grids showing what DeSRA detected (and removed), per image.

Writes ``OUT/index.html`` (self-contained: grids embedded as base64 PNG unless ``link``) and ``OUT/grids/<stem>.png``:
for each image the LR input, MSE-SR and GAN-SR outputs, the detected mask over the GAN-SR output, the pseudo-GT
(computed from the mask with ``dilate`` / ``feather`` unless ``pseudo_gt`` is given), the fine-tuned output when
given and, with ``fused`` (a folder written by ``desra fuse``), the fused output and the fusion column (which source
each region came from), sorted by detected artifact area (see :mod:`desra_basicsr.evaluation.report`).

Example::

    from desra_basicsr.jobs.report import ReportSettings, run
    page = run(ReportSettings(out='report', lr='lr', mse='sr/mse', gan='sr/gan', masks='masks')).page
"""
import json
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Optional

from desra_basicsr.errors import DesraSettingsError, settings_phase
from desra_basicsr.folders import check_out_dir, pair_inputs
from desra_basicsr.jobs.progress import progress_bar
from desra_basicsr.jobs.pseudo_gt import MAX_RADIUS
from desra_basicsr.settings import Settings, setting
from desra_basicsr.utils import notice

#: Folder options of :class:`ReportSettings`, in grid order.
FOLDER_KEYS = ('lr', 'mse', 'gan', 'masks', 'pseudo_gt', 'finetuned', 'finetuned_masks', 'fused', 'fusion_maps')
#: Largest tile height (pixels).
MAX_TILE_HEIGHT = 4096


@dataclass(frozen=True)
class ReportSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        out (str): Output folder.
        lr (str): Folder of LR inputs.
        mse (str): Folder of MSE-SR outputs.
        gan (str): Folder of GAN-SR outputs.
        masks (str): Folder of detected masks (of the GAN-SR outputs).
        pseudo_gt (str | None): Folder of pseudo-GT images (default: computed from the masks).
        finetuned (str | None): Folder of the fine-tuned model's outputs.
        finetuned_masks (str | None): Folder of masks detected on the fine-tuned outputs (needs ``finetuned``).
        fused (str | None): Output folder of ``desra fuse`` (fused images, ``maps/``, ``summary.json``).
        tile_height (int): Tile height in pixels.
        link (bool): Link the PNG grids from the page instead of embedding them.
        title (str): Page title.
        dilate (float): Dilation of the computed pseudo-GT's mask, pixels (as in the pseudo-GT job).
        feather (float): Feathering of the computed pseudo-GT's mask, pixels.
        progress (bool): Show a progress bar.
    """
    out: str = setting(kind='path')
    lr: str = setting(kind='path')
    mse: str = setting(kind='path')
    gan: str = setting(kind='path')
    masks: str = setting(kind='path')
    pseudo_gt: Optional[str] = setting(None, kind='path')
    finetuned: Optional[str] = setting(None, kind='path')
    finetuned_masks: Optional[str] = setting(None, kind='path')
    fused: Optional[str] = setting(None, kind='path')
    tile_height: int = setting(256, lo=16, hi=MAX_TILE_HEIGHT)
    link: bool = False
    title: str = 'DeSRA report'
    dilate: float = setting(0.0, lo=0, hi=MAX_RADIUS)
    feather: float = setting(0.0, lo=0, hi=MAX_RADIUS)
    progress: bool = True

    def check(self) -> None:
        """The masks of the fine-tuned outputs come with those outputs."""
        if self.finetuned_masks and not self.finetuned:
            raise DesraSettingsError('--finetuned-masks: needs --finetuned')


@dataclass
class ReportResult:
    """Result of :func:`run`.

    Attributes:
        page (str): Path of ``index.html``.
        images (int): Images shown.
        skipped (list[str]): Stems missing from at least one folder (not shown).
    """
    page: str
    images: int
    skipped: List[str] = field(default_factory=list)


def run(settings: ReportSettings) -> ReportResult:
    """Write the report.

    Args:
        settings (ReportSettings): Folders and page options.

    Returns:
        ReportResult: The page and what it shows.

    Raises:
        DesraSettingsError: For unusable settings, before any image is read.
        DesraInputError: If an image cannot be read or sizes differ.
    """
    folders = {k: getattr(settings, k) for k in FOLDER_KEYS[:-1] if getattr(settings, k)}
    fusion_sources = []
    if settings.fused:
        folders['fusion_maps'] = osp.join(settings.fused, 'maps')
        try:
            with open(osp.join(settings.fused, 'summary.json'), 'r', encoding='utf-8') as f:
                fusion_sources = json.load(f)['meta']['sources']
            if not (isinstance(fusion_sources, list) and all(isinstance(s, str) for s in fusion_sources)):
                raise TypeError(f'meta.sources is {fusion_sources!r}, not a list of folder names')
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DesraSettingsError(f'{settings.fused}: --fused is not a folder written by desra fuse (its '
                                     f'summary.json lists no sources: {err})') from err
    check_out_dir(settings.out, folders)
    pairs, missing = pair_inputs(folders)
    if missing:
        shown = ', '.join(sorted(missing)[:5]) + (' ...' if len(missing) > 5 else '')
        notice(f'{len(missing)} image(s) missing from at least one folder, skipped: {shown}')
    if not pairs:
        raise DesraSettingsError(f'{settings.gan}: no image is present in every given folder')

    from desra_basicsr.detection.pseudo_gt import ArtifactMaskTransform
    from desra_basicsr.evaluation.report import ReportItem, write_report
    from desra_basicsr.image_io import stem

    with settings_phase():
        transform = ArtifactMaskTransform(dilate=settings.dilate, feather=settings.feather)
    items = []
    for paths in pairs:
        found = dict(zip(folders, paths))
        items.append(
            ReportItem(
                name=stem(found['gan']),
                lr=found['lr'],
                mse=found['mse'],
                gan=found['gan'],
                mask=found['masks'],
                pseudo_gt=found.get('pseudo_gt'),
                finetuned=found.get('finetuned'),
                finetuned_mask=found.get('finetuned_masks'),
                fused=found.get('fused'),
                fusion_map=found.get('fusion_maps')))
    page = write_report(
        items,
        settings.out,
        settings.tile_height,
        embed=not settings.link,
        title=settings.title,
        progress=progress_bar(settings.progress, 'report'),
        transform=transform,
        fusion_sources=fusion_sources)
    return ReportResult(page=page, images=len(items), skipped=sorted(missing))
