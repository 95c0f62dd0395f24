"""Overlapping tiles blended with a smooth window: a function of image crops applied to an image of any size.

A tile's weight rises as a raised cosine over the ``overlap`` pixels at each of its sides and is flat inside, and
the blended result divides by the summed weights. So where two tiles overlap, the result passes smoothly from one
to the other (no seam), and a function that treats every crop alike gives the same result tiled as whole. The
restorer blends its noise predictions at every denoising step this way (MultiDiffusion, Bar-Tal et al. 2023), so
the tiles of one image agree on one sample.
"""
from typing import Callable, List

import torch


def tile_starts(length: int, tile: int, overlap: int) -> List[int]:
    """Start offsets of the tiles covering ``length`` pixels, each ``tile`` long, neighbours sharing >= ``overlap``.

    Args:
        length (int): The side to cover.
        tile (int): The tile side (a side shorter than it is one tile).
        overlap (int): Least overlap of neighbouring tiles, in [0, tile).

    Returns:
        list[int]: Increasing starts; the first is 0 and the last ends at ``length``.
    """
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def window_1d(size: int, overlap: int, device: torch.device) -> torch.Tensor:
    """A tile's weights along one side: a raised cosine over ``overlap`` pixels at each end, 1 between, never 0.

    Args:
        size (int): The tile side.
        overlap (int): The ramp length (0: a flat window).
        device (torch.device): Where the weights live.

    Returns:
        torch.Tensor: ``size`` positive weights.
    """
    weights = torch.ones(size, device=device)
    ramp = min(overlap, size // 2)
    if ramp > 0:
        x = (torch.arange(ramp, device=device, dtype=torch.float32) + 0.5) / ramp
        rise = 0.5 - 0.5 * torch.cos(torch.pi * x)
        weights[:ramp] = rise
        weights[size - ramp:] = rise.flip(0)
    return weights


def blend_tiles(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, overlap: int,
                batch: int = 8) -> torch.Tensor:
    """Apply ``fn`` to overlapping ``tile`` x ``tile`` crops of ``x`` and blend the results with smooth windows.

    Args:
        fn (Callable): ``NxCxhxw`` crops -> ``NxC'xhxw`` results (the crops of one call share one size).
        x (torch.Tensor): ``1xCxHxW`` input.
        tile (int): Tile side (sides shorter than it are one tile).
        overlap (int): Overlap of neighbouring tiles, in [0, tile).
        batch (int): Most tiles per call of ``fn``.

    Returns:
        torch.Tensor: ``1xC'xHxW`` blended result.
    """
    height, width = x.shape[-2:]
    th, tw = min(tile, height), min(tile, width)
    boxes = [(top, left) for top in tile_starts(height, th, overlap) for left in tile_starts(width, tw, overlap)]
    window = window_1d(th, overlap, x.device)[:, None] * window_1d(tw, overlap, x.device)[None, :]
    out = None
    total = torch.zeros((height, width), device=x.device)
    for first in range(0, len(boxes), batch):
        chunk = boxes[first:first + batch]
        results = fn(torch.cat([x[..., t:t + th, s:s + tw] for t, s in chunk]))
        if out is None:
            out = torch.zeros((1, results.shape[1], height, width), device=x.device, dtype=torch.float32)
        for result, (t, s) in zip(results, chunk):
            out[0, :, t:t + th, s:s + tw] += result.float() * window
            total[t:t + th, s:s + tw] += window
    return (out / total).to(x.dtype)
