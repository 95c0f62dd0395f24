"""Running a BasicSR generator over images: building it, loading its weights, tiled inference with overlap.

Tiling (as Real-ESRGAN's ``RealESRGANer`` does): the LR image is cut into ``tile x tile`` tiles; each tile is
run with ``tile_pad`` extra LR pixels of context on every side (fewer at the image border) and only the output
of the tile itself is kept. When ``tile_pad`` covers the generator's receptive-field radius, the tiled output
equals the untiled output up to float rounding, while peak memory depends on the tile size only.

Generators that need input sizes divisible by some number (SwinIR's window, RRDBNet's pixel-unshuffle at x2/x1)
get each input reflect-padded up to that multiple; the padded part of the output is cropped away.
"""
import os.path as osp
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
import yaml

from desra_basicsr.errors import DesraInputError

PREFERRED_PARAM_KEYS = ('params_ema', 'params')


def resolve_device(device: str = 'auto') -> torch.device:
    """Turn ``'auto'`` / ``'cpu'`` / ``'cuda'`` / ``'cuda:N'`` into a device, checking CUDA is there.

    Args:
        device (str): Device name; ``'auto'`` picks CUDA when available.

    Returns:
        torch.device: The device.

    Raises:
        DesraInputError: If CUDA is asked for and not available.
    """
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    dev = torch.device(device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise DesraInputError(f'--device {device}: CUDA is not available on this machine')
    return dev


def load_state_dict(path: str, param_key: Optional[str] = None) -> Tuple[Dict[str, torch.Tensor], str]:
    """Read a generator's weights from a BasicSR checkpoint (or a bare state dict).

    Args:
        path (str): Checkpoint file.
        param_key (str | None): Key holding the weights (``params_ema``, ``params``); None picks the first of
            those present, or the file itself when it is a bare state dict.

    Returns:
        tuple: ``(state_dict, key)``, key ``''`` for a bare state dict; ``module.`` prefixes are removed.

    Raises:
        DesraInputError: If the file is missing, unreadable, or lacks ``param_key``.
    """
    if not osp.isfile(path):
        raise DesraInputError(f'{path}: weights file not found')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        raise DesraInputError(f'{path}: cannot load weights ({err})') from err
    if not isinstance(ckpt, dict):
        raise DesraInputError(f'{path}: not a state dict or BasicSR checkpoint')
    nested = [key for key, value in ckpt.items() if isinstance(value, dict)]
    if param_key:
        if param_key not in ckpt:
            raise DesraInputError(f'{path}: no key {param_key!r} (keys: {", ".join(map(str, ckpt)) or "none"})')
        key = param_key
    elif nested:
        key = next((k for k in PREFERRED_PARAM_KEYS if k in ckpt), None)
        if key is None:
            raise DesraInputError(f'{path}: none of {PREFERRED_PARAM_KEYS} found (keys: {", ".join(nested)}); '
                                  'name the key with --param-key')
    else:
        key = ''
    state = ckpt[key] if key else ckpt
    return {(k[7:] if k.startswith('module.') else k): v for k, v in state.items()}, key


def build_generator(arch: str,
                    arch_kwargs: Dict[str, Any],
                    weights: Optional[str] = None,
                    param_key: Optional[str] = None,
                    strict: bool = True) -> torch.nn.Module:
    """Build a generator from BasicSR's ``ARCH_REGISTRY`` (plugin archs included) and load its weights.

    Args:
        arch (str): Registered architecture name, e.g. ``'RRDBNet'``.
        arch_kwargs (dict): Constructor arguments (``network_g`` without ``type``). Not modified.
        weights (str | None): Checkpoint file; None leaves the random initialisation.
        param_key (str | None): See :func:`load_state_dict`.
        strict (bool): Require the checkpoint's keys to match the network's exactly.

    Returns:
        torch.nn.Module: The generator in eval mode, on the CPU.

    Raises:
        DesraInputError: Unknown architecture, bad constructor arguments, or weights that do not fit.
    """
    import desra_basicsr  # noqa: F401  (registers BasicSR's and the plugin's archs)
    from basicsr.utils.registry import ARCH_REGISTRY

    # BasicSR registers some archs (SRVGGNetCompact, UNetDiscriminatorSN) as ``<name>_basicsr``; its ``get`` finds
    # them too but prints a notice, so the suffixed name is looked up directly.
    name = arch if arch in ARCH_REGISTRY else f'{arch}_basicsr'
    try:
        arch_cls = ARCH_REGISTRY.get(name)
    except KeyError as err:
        names = ', '.join(sorted(ARCH_REGISTRY.keys()))
        raise DesraInputError(f'{arch}: unknown architecture (registered: {names})') from err
    try:
        net = arch_cls(**dict(arch_kwargs))
    except TypeError as err:
        raise DesraInputError(f'{arch}: bad architecture arguments {dict(arch_kwargs)} ({err})') from err
    if weights:
        state, _ = load_state_dict(weights, param_key)
        try:
            net.load_state_dict(state, strict=strict)
        except RuntimeError as err:
            raise DesraInputError(f'{weights}: weights do not fit {arch}({arch_kwargs}): {err}') from err
    return net.eval()


def generator_from_options(opt_path: str,
                           weights: Optional[str] = None,
                           param_key: Optional[str] = None) -> Tuple[torch.nn.Module, int]:
    """Build the generator of a BasicSR option file (``network_g`` + ``path.pretrain_network_g``).

    Args:
        opt_path (str): BasicSR option YAML (training or test).
        weights (str | None): Overrides ``path.pretrain_network_g``.
        param_key (str | None): Overrides ``path.param_key_g``; None with neither picks as
            :func:`load_state_dict` does.

    Returns:
        tuple: ``(net, size_multiple)``, see :func:`size_multiple`.

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
    net = build_generator(network_g['type'], kwargs, weights, param_key or path_opt.get('param_key_g'),
                          bool(path_opt.get('strict_load_g', True)))
    return net, size_multiple(network_g['type'], kwargs)


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


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
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
        device (str): ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        tile (int): Tile size in LR pixels; 0 runs whole images.
        tile_pad (int): LR pixels of context around each tile (should cover the receptive-field radius).
        fp16 (bool): Half precision (CUDA only).
        size_multiple (int): Inputs are reflect-padded to a multiple of this (see :func:`size_multiple`).
    """

    def __init__(self,
                 net: torch.nn.Module,
                 device: str = 'auto',
                 tile: int = 0,
                 tile_pad: int = 10,
                 fp16: bool = False,
                 size_multiple: int = 1) -> None:
        if tile < 0 or tile_pad < 0:
            raise DesraInputError(f'--tile {tile} --tile-pad {tile_pad}: sizes must be >= 0')
        self.device = resolve_device(device)
        if fp16 and self.device.type != 'cuda':
            raise DesraInputError(f'--fp16: half precision needs a CUDA device, got {self.device}')
        self.tile, self.tile_pad, self.fp16 = tile, tile_pad, fp16
        self.multiple = max(1, int(size_multiple))
        self.net = net.to(self.device).eval()
        if fp16:
            self.net = self.net.half()

    @torch.no_grad()
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """Generator output for a 1x3xhxw float tensor on the device (padding to the multiple, then cropping)."""
        h, w = x.shape[-2:]
        padded = _pad_to_multiple(x, self.multiple)
        out = self.net(padded)
        scale = out.shape[-2] // padded.shape[-2]
        return out[..., :h * scale, :w * scale]

    def enhance(self, img: np.ndarray) -> np.ndarray:
        """Super-resolve one image.

        Args:
            img (np.ndarray): HxWx3 uint8 BGR image.

        Returns:
            np.ndarray: (sH)x(sW)x3 uint8 BGR image, ``s`` the generator's scale.
        """
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))).unsqueeze(0)
        x = x.to(self.device, torch.float16 if self.fp16 else torch.float32) / 255.
        h, w = x.shape[-2:]
        if self.tile == 0 or (h <= self.tile and w <= self.tile):
            out = self._run(x)
        else:
            out = self._run_tiled(x)
        out = (out.float().clamp_(0, 1) * 255.).round_().to(torch.uint8)
        return np.ascontiguousarray(out[0].cpu().numpy().transpose(1, 2, 0)[:, :, ::-1])

    def _run_tiled(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        out, scale = None, 0
        for top in range(0, h, self.tile):
            for left in range(0, w, self.tile):
                bottom, right = min(top + self.tile, h), min(left + self.tile, w)
                y0, x0 = max(top - self.tile_pad, 0), max(left - self.tile_pad, 0)
                y1, x1 = min(bottom + self.tile_pad, h), min(right + self.tile_pad, w)
                tile_out = self._run(x[..., y0:y1, x0:x1])
                if out is None:
                    scale = tile_out.shape[-2] // (y1 - y0)
                    out = x.new_zeros((1, tile_out.shape[1], h * scale, w * scale))
                out[..., top * scale:bottom * scale,
                    left * scale:right * scale] = tile_out[..., (top - y0) * scale:(bottom - y0) * scale,
                                                           (left - x0) * scale:(right - x0) * scale]
        return out
