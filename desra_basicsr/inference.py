"""Running a BasicSR generator over images: building it, loading its weights, tiled inference with overlap.

Tiling (as Real-ESRGAN's ``RealESRGANer`` does): the LR image is cut into ``tile x tile`` tiles; each tile is
run with ``tile_pad`` extra LR pixels of context on every side (fewer at the image border) and only the output
of the tile itself is kept. When ``tile_pad`` covers the generator's receptive-field radius, the tiled output
equals the untiled output up to float rounding, while peak memory depends on the tile size only.

Generators that need input sizes divisible by some number (SwinIR's window, RRDBNet's pixel-unshuffle at x2/x1)
get each input reflect-padded up to that multiple; the padded part of the output is cropped away. A tile's window
then starts on a multiple of that number, so that its pixels are grouped as in the whole image.
"""
import os.path as osp
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import yaml

from desra_basicsr.checkpoints import STATE_DICT_KEYS, load_weights
from desra_basicsr.devices import resolve_device
from desra_basicsr.errors import DesraInputError, DesraSettingsError


def build_generator(arch: str,
                    arch_kwargs: Dict[str, Any],
                    weights: Optional[str] = None,
                    param_key: Optional[str] = None,
                    strict: bool = True,
                    fallback: Optional[Sequence[str]] = None) -> torch.nn.Module:
    """Build a generator from BasicSR's ``ARCH_REGISTRY`` and load its weights.

    Args:
        arch (str): Registered architecture name, e.g. ``'RRDBNet'``.
        arch_kwargs (dict): Constructor arguments (``network_g`` without ``type``). Not modified.
        weights (str | None): Checkpoint file; None leaves the random initialisation.
        param_key (str | None): Key of the state dict, which must exist; None picks ``params_ema``, else
            ``params``, else ``state_dict``, else the bare state dict (see
            :func:`desra_basicsr.checkpoints.select_state_dict`).
        strict (bool): Require the checkpoint's keys to match the network's exactly.
        fallback (Sequence[str] | None): Keys tried when ``param_key`` is absent from the checkpoint; None: none
            when ``param_key`` is given, else ``params_ema``, ``params``, ``state_dict``.

    Returns:
        torch.nn.Module: The generator in eval mode, on the CPU.

    Raises:
        DesraSettingsError: Unknown architecture or bad constructor arguments.
        DesraInputError: Weights that cannot be read or do not fit.
    """
    from basicsr.utils.registry import ARCH_REGISTRY

    # BasicSR registers some archs (SRVGGNetCompact, UNetDiscriminatorSN) as ``<name>_basicsr``.
    name = next((n for n in (arch, f'{arch}_basicsr') if n in ARCH_REGISTRY), None)
    if name is None:
        names = sorted({n[:-len('_basicsr')] if n.endswith('_basicsr') else n for n in ARCH_REGISTRY.keys()})
        raise DesraSettingsError(f'--arch {arch}: unknown architecture (registered: {", ".join(names)})')
    try:
        net = ARCH_REGISTRY.get(name)(**dict(arch_kwargs))
    except TypeError as err:
        raise DesraSettingsError(f'{arch}: bad architecture arguments {dict(arch_kwargs)} ({err})') from err
    if weights:
        if fallback is None:  # a key the user names must exist; otherwise params_ema, params or a bare state dict
            fallback = () if param_key else STATE_DICT_KEYS
        load_weights(net, weights, param_key, strict, fallback)
    return net.eval()


def generator_from_options(opt_path: str,
                           weights: Optional[str] = None,
                           param_key: Optional[str] = None) -> Tuple[torch.nn.Module, int, str]:
    """Build the generator of a BasicSR option file (``network_g`` + ``path.pretrain_network_g``).

    Args:
        opt_path (str): BasicSR option YAML (training or test).
        weights (str | None): Overrides ``path.pretrain_network_g``.
        param_key (str | None): Overrides ``path.param_key_g`` and must exist in the checkpoint; the option file's
            key falls back to ``params`` as in BasicSR; with neither, the key is picked as :func:`build_generator`
            does.

    Returns:
        tuple: ``(net, size_multiple, weights)``: the generator, its input size multiple (see
        :func:`size_multiple`) and the weights file it was loaded from.

    Raises:
        DesraInputError: If the file is missing or malformed, or names no weights.
    """
    if not osp.isfile(opt_path):
        raise DesraInputError(f'{opt_path}: option file not found')
    try:
        with open(opt_path, 'r') as f:
            opt = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise DesraInputError(f'{opt_path}: not valid YAML ({err})') from err
    network_g = (opt or {}).get('network_g') if isinstance(opt, dict) else None
    if not isinstance(network_g, dict) or 'type' not in network_g:
        raise DesraInputError(f'{opt_path}: no network_g with a type')
    path_opt = opt.get('path') or {}
    weights = weights or path_opt.get('pretrain_network_g')
    if not weights:
        raise DesraInputError(f'{opt_path}: path.pretrain_network_g is empty and no --weights given')
    kwargs = {k: v for k, v in network_g.items() if k != 'type'}
    file_key = None if param_key else path_opt.get('param_key_g')
    net = build_generator(network_g['type'], kwargs, weights, param_key or file_key,
                          bool(path_opt.get('strict_load_g', True)), ('params', ) if file_key else None)
    return net, size_multiple(network_g['type'], kwargs), weights


def size_multiple(arch: str, arch_kwargs: Dict[str, Any]) -> int:
    """The number input sides must be divisible by for a generator: SwinIR-like window sizes and RRDBNet's
    pixel-unshuffle at x2 (2) and x1 (4); 1 otherwise.

    Args:
        arch (str): Architecture name.
        arch_kwargs (dict): Its constructor arguments.

    Returns:
        int: The multiple.
    """
    multiple = int(arch_kwargs.get('window_size', 1) or 1)
    if arch == 'RRDBNet':
        multiple = max(multiple, {1: 4, 2: 2}.get(int(arch_kwargs.get('scale', 4)), 1))
    return multiple


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad an ``...xHxW`` tensor at the bottom and right up to a multiple of ``multiple`` (reflect, or replicate
    when the image is too small to reflect). Crop the output back to ``scale`` times the input size.

    Args:
        x (torch.Tensor): Input batch.
        multiple (int): Size multiple (1: unchanged).

    Returns:
        torch.Tensor: The padded tensor (``x`` itself when no padding is needed).
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = 'reflect' if ph < h and pw < w else 'replicate'
    return torch.nn.functional.pad(x, (0, pw, 0, ph), mode=mode)


class SRInferencer:
    """Run a generator on HxWx3 uint8 BGR images, optionally tiled, on any device, fp16 on CUDA.

    Args:
        net (torch.nn.Module): The generator (moved to ``device``; eval mode).
        device (str): ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'cuda:N'`` (see
            :func:`desra_basicsr.devices.resolve_device`).
        tile (int): Tile size in LR pixels; 0 runs whole images.
        tile_pad (int): LR pixels of context around each tile (should cover the receptive-field radius).
        fp16 (bool): Half precision (CUDA only) through ``torch.autocast``: the weights stay float32 and each
            operation runs in the precision autocast chooses, so buffers a network builds in float32 (SwinIR's
            attention mask for inputs of another size than ``img_size``) keep working.
        size_multiple (int): Inputs are reflect-padded to a multiple of this (see :func:`size_multiple`).
        local_rank (int): Rank on this machine under torchrun (picks the GPU, see
            :func:`desra_basicsr.devices.resolve_device`).
        weights (str | None): The generator's weights file, named when its output is not finite.
    """

    def __init__(self,
                 net: torch.nn.Module,
                 device: str = 'auto',
                 tile: int = 0,
                 tile_pad: int = 10,
                 fp16: bool = False,
                 size_multiple: int = 1,
                 local_rank: int = 0,
                 weights: Optional[str] = None) -> None:
        if tile < 0 or tile_pad < 0:
            raise DesraSettingsError(f'--tile {tile} --tile-pad {tile_pad}: sizes must be >= 0')
        self.device = resolve_device(device, local_rank)
        if fp16 and self.device.type != 'cuda':
            raise DesraSettingsError(f'--fp16: half precision needs a CUDA device, got {self.device}')
        self.tile, self.tile_pad, self.fp16 = tile, tile_pad, fp16
        self.multiple = max(1, int(size_multiple))
        self.weights = weights
        self.net = net.to(self.device).eval()

    @torch.no_grad()
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """Generator output for a 1x3xhxw float tensor on the device (padding to the multiple, then cropping)."""
        h, w = x.shape[-2:]
        padded = pad_to_multiple(x, self.multiple)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16):
            out = self.net(padded).float()
        scale = out.shape[-2] // padded.shape[-2]
        return out[..., :h * scale, :w * scale]

    def enhance(self, img: np.ndarray, name: str = '<array>') -> np.ndarray:
        """Super-resolve one image.

        Args:
            img (np.ndarray): HxWx3 uint8 BGR image.
            name (str): The image's file, named in errors.

        Returns:
            np.ndarray: (sH)x(sW)x3 uint8 BGR image, ``s`` the generator's scale.

        Raises:
            DesraInputError: If the generator's output holds NaN or infinite values (which would otherwise be
                written as a black or white image).
        """
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))).unsqueeze(0)
        x = x.to(self.device, torch.float32) / 255.
        h, w = x.shape[-2:]
        if self.tile == 0 or (h <= self.tile and w <= self.tile):
            out = self._run(x)
        else:
            out = self._run_tiled(x)
        if not bool(torch.isfinite(out).all()):
            hint = ' (or float16 overflowed: try without --fp16)' if self.fp16 else ''
            raise DesraInputError(f'{name}: the generator produced NaN/inf values; the weights '
                                  f'{self.weights or "(not named)"} may be corrupt{hint}')
        out = (out.clamp_(0, 1) * 255.).round_().to(torch.uint8)
        return np.ascontiguousarray(out[0].cpu().numpy().transpose(1, 2, 0)[:, :, ::-1])

    def _run_tiled(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        out, scale = None, 0
        for top in range(0, h, self.tile):
            for left in range(0, w, self.tile):
                bottom, right = min(top + self.tile, h), min(left + self.tile, w)
                # the window starts on the size multiple's grid, which the untiled run's pixel-unshuffle or
                # attention windows follow, so that a tile groups its pixels as the whole image does
                y0 = max(top - self.tile_pad, 0) // self.multiple * self.multiple
                x0 = max(left - self.tile_pad, 0) // self.multiple * self.multiple
                y1, x1 = min(bottom + self.tile_pad, h), min(right + self.tile_pad, w)
                tile_out = self._run(x[..., y0:y1, x0:x1])
                if out is None:
                    scale = tile_out.shape[-2] // (y1 - y0)
                    out = x.new_zeros((1, tile_out.shape[1], h * scale, w * scale))
                out[..., top * scale:bottom * scale,
                    left * scale:right * scale] = tile_out[..., (top - y0) * scale:(bottom - y0) * scale,
                                                           (left - x0) * scale:(right - x0) * scale]
        return out
