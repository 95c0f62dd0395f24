"""Visual report of a DeSRA run: one PNG grid per image and a self-contained HTML page listing them.

Each grid is one row of tiles scaled to the same height, each with a caption strip: LR (nearest-neighbour upscaled
to the SR size), MSE-SR, GAN-SR, the GAN-SR output with the detected mask overlaid in red, the pseudo-GT
(eq. 10 through :class:`~desra_basicsr.detection.pseudo_gt.ArtifactMaskTransform`, with its dilation
and feathering, unless a pseudo-GT image is given), and when given the fine-tuned output (with its own mask
overlaid when given) and the output of ``desra fuse`` with the source of each region (the fusion column: the fused
image tinted with one colour per source, :data:`SOURCE_COLOURS`). The page lists the images sorted by detected
artifact area, largest first, and embeds every grid as a base64 PNG (``embed=True``), so the one HTML file is the
whole report; with ``embed=False`` it links the PNG files under ``grids/`` instead.
"""
import base64
import html
import os
import os.path as osp
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Sequence, TextIO, Tuple

import cv2
import numpy as np

from desra_basicsr.errors import DesraInputError
from desra_basicsr.image_io import read_image, read_mask, write_image
from desra_basicsr.utils import atomic_write_path

if TYPE_CHECKING:
    from desra_basicsr.detection.pseudo_gt import ArtifactMaskTransform

CAPTION_HEIGHT = 22
OVERLAY_COLOUR = (0, 0, 255)  # BGR red
OVERLAY_ALPHA = 0.5
#: BGR colour of each fusion source (index of ``desra fuse``'s maps), with its name for the page's legend.
SOURCE_COLOURS = (
    ((255, 128, 0), 'blue'),
    ((0, 190, 0), 'green'),
    ((0, 140, 255), 'orange'),
    ((200, 0, 200), 'magenta'),
    ((0, 220, 220), 'yellow'),
    ((255, 255, 0), 'cyan'),
    ((0, 0, 200), 'red'),
    ((128, 128, 128), 'grey'),
)


@dataclass
class ReportItem:
    """Paths of one image's report inputs (optional ones None).

    Attributes:
        name (str): Image stem.
        lr (str): LR input.
        mse (str): MSE-SR output.
        gan (str): GAN-SR output.
        mask (str): Detected artifact mask of the GAN-SR output.
        pseudo_gt (str | None): Pseudo-GT image; computed from the mask when None.
        finetuned (str | None): Fine-tuned model's output.
        finetuned_mask (str | None): Mask detected on the fine-tuned output.
        fused (str | None): Output of ``desra fuse``.
        fusion_map (str | None): Its map of sources (``desra fuse``'s ``maps/<stem>.png``).
    """
    name: str
    lr: str
    mse: str
    gan: str
    mask: str
    pseudo_gt: Optional[str] = None
    finetuned: Optional[str] = None
    finetuned_mask: Optional[str] = None
    fused: Optional[str] = None
    fusion_map: Optional[str] = None


def tint_sources(img: np.ndarray, index_map: np.ndarray) -> np.ndarray:
    """Tint each pixel of ``img`` with the colour of its fusion source (:data:`SOURCE_COLOURS`), half and half.

    Args:
        img (np.ndarray): ``HxWx3`` uint8 BGR fused image.
        index_map (np.ndarray): ``HxW`` source index per pixel.

    Returns:
        np.ndarray: New ``HxWx3`` uint8 image.
    """
    colours = np.array([colour for colour, _ in SOURCE_COLOURS], np.uint8)
    return cv2.addWeighted(img, 0.5, colours[index_map % len(colours)], 0.5, 0)


def overlay_mask(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Blend ``mask`` pixels of ``img`` with red and outline the regions.

    Args:
        img (np.ndarray): ``HxWx3`` uint8 BGR image.
        mask (np.ndarray): ``HxW`` bool mask.

    Returns:
        np.ndarray: New ``HxWx3`` uint8 image.
    """
    out = img.copy()
    if mask.any():
        red = np.array(OVERLAY_COLOUR, np.float32)
        out[mask] = np.round(img[mask] * (1 - OVERLAY_ALPHA) + red * OVERLAY_ALPHA).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, OVERLAY_COLOUR, max(1, img.shape[0] // 256))
    return out


def _tile(img: np.ndarray, caption: str, height: int, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    h, w = img.shape[:2]
    width = max(1, int(round(w * height / h)))
    body = cv2.resize(img, (width, height), interpolation=interpolation) if (h, w) != (height, width) else img
    strip = np.full((CAPTION_HEIGHT, width, 3), 40, np.uint8)
    (text_w, _), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    scale = 0.45 * min(1.0, (width - 8) / max(text_w, 1))  # shrink long captions to the tile width
    cv2.putText(strip, caption, (4, CAPTION_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return np.concatenate([strip, body], 0)


def build_grid(item: ReportItem,
               tile_height: int = 256,
               transform: Optional['ArtifactMaskTransform'] = None) -> Tuple[np.ndarray, Dict[str, float]]:
    """Build one image's grid and its artifact figures.

    Args:
        item (ReportItem): Input paths.
        tile_height (int): Height of every tile's image part, pixels.
        transform (ArtifactMaskTransform | None): Merge that makes the pseudo-GT when ``item.pseudo_gt`` is None
            (default: eq. 10 without dilation or feathering).

    Returns:
        tuple: ``(grid, info)``: the ``HxWx3`` uint8 grid and ``area`` (percent of pixels), ``pixels``,
        ``finetuned_area`` (percent, when a fine-tuned mask is given).

    Raises:
        DesraInputError: If an input is unreadable, or an SR output, pseudo-GT or mask differs in size from the
            GAN-SR output.
    """
    gan = read_image(item.gan)

    def same_size(path: str, arr: np.ndarray) -> np.ndarray:
        if arr.shape[:2] != gan.shape[:2]:
            raise DesraInputError(f'{path}: size {arr.shape[1]}x{arr.shape[0]} differs from the GAN-SR output '
                                  f'{item.gan} ({gan.shape[1]}x{gan.shape[0]})')
        return arr

    mse, mask = same_size(item.mse, read_image(item.mse)), same_size(item.mask, read_mask(item.mask))
    lr = read_image(item.lr)
    lr_up = cv2.resize(lr, (gan.shape[1], gan.shape[0]), interpolation=cv2.INTER_NEAREST)
    if item.pseudo_gt:
        pseudo = same_size(item.pseudo_gt, read_image(item.pseudo_gt))
    else:
        if transform is None:
            from desra_basicsr.detection.pseudo_gt import ArtifactMaskTransform
            transform = ArtifactMaskTransform()
        pseudo = transform.merge(mse, gan, transform.weight(mask))
    info = {'area': 100.0 * np.count_nonzero(mask) / mask.size, 'pixels': int(np.count_nonzero(mask))}
    tiles = [
        _tile(lr_up, f'LR {lr.shape[1]}x{lr.shape[0]}', tile_height, cv2.INTER_NEAREST),
        _tile(mse, 'MSE-SR', tile_height),
        _tile(gan, 'GAN-SR', tile_height),
        _tile(overlay_mask(gan, mask), f'mask {info["area"]:.2f}%', tile_height),
        _tile(pseudo, 'pseudo-GT', tile_height),
    ]
    if item.finetuned:
        tuned = same_size(item.finetuned, read_image(item.finetuned))
        if item.finetuned_mask:
            tuned_mask = read_mask(item.finetuned_mask)
            if tuned_mask.shape != tuned.shape[:2]:
                raise DesraInputError(f'{item.finetuned_mask}: size differs from {item.finetuned}')
            info['finetuned_area'] = 100.0 * np.count_nonzero(tuned_mask) / tuned_mask.size
            tiles.append(
                _tile(overlay_mask(tuned, tuned_mask), f'fine-tuned {info["finetuned_area"]:.2f}%', tile_height))
        else:
            tiles.append(_tile(tuned, 'fine-tuned', tile_height))
    if item.fused:
        fused = same_size(item.fused, read_image(item.fused))
        tiles.append(_tile(fused, 'fused', tile_height))
        if item.fusion_map:
            index_map = read_image(item.fusion_map)[:, :, 0]
            if index_map.shape != fused.shape[:2]:
                raise DesraInputError(f'{item.fusion_map}: size differs from {item.fused}')
            counts = np.bincount(index_map.ravel())
            info['fusion_shares'] = {int(k): 100.0 * c / index_map.size for k, c in enumerate(counts) if c}
            tiles.append(_tile(tint_sources(fused, index_map), 'fusion sources', tile_height))
    gap = np.full((tile_height + CAPTION_HEIGHT, 4, 3), 255, np.uint8)
    row: List[np.ndarray] = []
    for tile in tiles:
        row += [tile, gap]
    return np.concatenate(row[:-1], 1), info


def mask_area(path: str) -> Tuple[float, int]:
    """Artifact area of a mask file.

    Args:
        path (str): Mask file.

    Returns:
        tuple: ``(percent of pixels, pixel count)``.
    """
    mask = read_mask(path)
    pixels = int(np.count_nonzero(mask))
    return 100.0 * pixels / mask.size, pixels


PAGE_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 16px; background: #fff; color: #111; }}
table {{ border-collapse: collapse; margin-bottom: 16px; }}
td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
section.item {{ margin: 12px 0; }}
h2 {{ font-size: 16px; margin: 4px 0; }}
p {{ margin: 2px 0 6px 0; }}
img.grid {{ display: block; max-width: none; }}
</style></head><body>
<h1>{title}</h1>
<p>{count} image(s), sorted by detected artifact area, largest first. Tiles: LR (upscaled), MSE-SR, GAN-SR,
detected mask (red), pseudo-GT, and when given the fine-tuned output, the fused output and the source of each of
its regions.</p>
<table><tr><th>image</th><th>area %</th><th>pixels</th></tr>
"""


def write_report(items: Iterable[ReportItem],
                 out_dir: str,
                 tile_height: int = 256,
                 embed: bool = True,
                 title: str = 'DeSRA report',
                 progress: Optional[Callable] = None,
                 transform: Optional[object] = None,
                 fusion_sources: Sequence[str] = ()) -> str:
    """Write ``out_dir/grids/<name>.png`` for every item and ``out_dir/index.html``, sorted by artifact area.

    Images are processed one at a time and the page is streamed to disk, so memory does not grow with the
    number of images. The page appears (atomically) only when complete, and ``grids/`` is built beside it and then
    takes the place of the previous run's: a failed run leaves the previous report as it was, and a run never keeps
    the grids of images it does not show.

    Args:
        items (Iterable[ReportItem]): Images to show.
        out_dir (str): Output folder.
        tile_height (int): Tile height in the grids.
        embed (bool): Embed the grids as base64 in the page (self-contained) instead of linking the PNG files.
        title (str): Page title.
        progress (callable | None): Wrapper for the item iterable (e.g. ``tqdm``), or None.
        transform (ArtifactMaskTransform | None): Merge of the computed pseudo-GT (see :func:`build_grid`).
        fusion_sources (Sequence[str]): Name of each fusion source (``desra fuse``'s ``meta.sources``), for the
            legend of the fusion column.

    Returns:
        str: Path of the HTML page.

    Raises:
        DesraInputError: If there is no item, or an input is unreadable or misaligned.
    """
    ranked = sorted(((*mask_area(item.mask), item) for item in items), key=lambda t: (-t[0], t[2].name))
    if not ranked:
        raise DesraInputError(f'{out_dir}: nothing to report (no image)')
    path = osp.join(out_dir, 'index.html')
    os.makedirs(out_dir, exist_ok=True)
    building = tempfile.mkdtemp(prefix='.grids.partial-', dir=out_dir)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(building, 0o777 & ~umask)  # mkdtemp's 0700: give grids/ the mode of any new folder
    try:
        with atomic_write_path(path) as tmp, open(tmp, 'w', encoding='utf-8') as page:
            _write_page(page, ranked, building, tile_height, embed, title, progress, transform, fusion_sources)
            page.close()
            _replace_folder(building, osp.join(out_dir, 'grids'))
    finally:
        if osp.isdir(building):
            shutil.rmtree(building)
    return path


def _replace_folder(new: str, folder: str) -> None:
    """Put the folder ``new`` in the place of ``folder`` (the old one, if any, is deleted)."""
    old = None
    if osp.isdir(folder):
        old = tempfile.mkdtemp(prefix='.grids.old-', dir=osp.dirname(folder))
        os.rename(folder, osp.join(old, 'grids'))
    os.rename(new, folder)
    if old is not None:
        shutil.rmtree(old)


def _write_page(page: TextIO, ranked: List[Tuple[float, int, ReportItem]], grids: str, tile_height: int,
                embed: bool, title: str, progress: Optional[Callable], transform: Optional[object],
                fusion_sources: Sequence[str]) -> None:
    """Stream the page of :func:`write_report` to ``page``, writing each image's grid into the folder ``grids``."""
    page.write(PAGE_HEAD.format(title=html.escape(title), count=len(ranked)))
    for area, pixels, item in ranked:
        name = html.escape(item.name)
        page.write(f'<tr><td><a href="#img-{name}">{name}</a></td><td>{area:.2f}</td><td>{pixels}</td></tr>\n')
    page.write('</table>\n')
    if fusion_sources:
        legend = ', '.join(f'{k}: {SOURCE_COLOURS[k % len(SOURCE_COLOURS)][1]} = {html.escape(source)}'
                           for k, source in enumerate(fusion_sources))
        page.write(f'<p>Fusion sources (colour in the "fusion sources" tile): {legend}</p>\n')
    for area, pixels, item in (progress(ranked) if progress else ranked):
        grid, info = build_grid(item, tile_height, transform)
        grid_rel = f'grids/{item.name}.png'
        write_image(osp.join(grids, f'{item.name}.png'), grid)
        if embed:
            ok, buf = cv2.imencode('.png', grid)
            if not ok:
                raise OSError(f'{item.name}: OpenCV could not encode the grid')
            src = 'data:image/png;base64,' + base64.b64encode(buf.tobytes()).decode('ascii')
        else:  # a relative URL: '#', '?' and '%' in a name are data, and quotes must not end the attribute
            src = html.escape(urllib.parse.quote(grid_rel))
        name = html.escape(item.name)
        tuned = f', fine-tuned {info["finetuned_area"]:.2f}%' if 'finetuned_area' in info else ''
        if 'fusion_shares' in info:
            tuned += '; fused from ' + ', '.join(
                f'source {k} {SOURCE_COLOURS[k % len(SOURCE_COLOURS)][1]} {share:.1f}%'
                for k, share in info['fusion_shares'].items())
        page.write(f'<section class="item" id="img-{name}"><h2>{name}</h2>'
                   f'<p>artifact area {area:.2f}% ({pixels} pixels){tuned}</p>'
                   f'<img class="grid" src="{src}" width="{grid.shape[1]}" height="{grid.shape[0]}" '
                   f'alt="{name}: LR, MSE-SR, GAN-SR, mask, pseudo-GT"></section>\n')
    page.write('</body></html>\n')
