"""DeSRA-det steps 1-2: the texture-complexity indicator map ``D`` (paper section 3.1), in numpy and torch.

For each channel, the local texture complexity is a Gaussian-weighted standard deviation (SSIM window: 11x11,
sigma 1.5)::

    mu = G * x,   sigma^2 = max(G * (x^2) - mu^2, 0)

and the indicator compares the GAN-SR and MSE-SR complexities, averaged over the channels::

    D = (2 * s_gan * s_mse + C) / (s_gan^2 + s_mse^2 + C),   C = (0.03 * 255)^2        (numerator 'release')
    D = (2 * s_gan * s_mse)     / (s_gan^2 + s_mse^2 + C)                              (numerator 'paper', eq. 7)

The paper's form gives ``D = 0`` wherever both windows are flat (``0 / C``), so flat areas count as artifacts even
where the two outputs are identical; the release's ``+ C`` gives ``D = 1`` there. Use ``'paper'`` for ablations only.

Ablations of the paper's Table 4 (``mode``), each mapped so that *low means artifact* and the same threshold
semantics apply:

* ``'relative'`` - DeSRA's indicator above;
* ``'absolute'`` - without the relative difference: the plain squared difference ``(s_gan - s_mse)^2`` divided
  by its largest possible value ``(R / 2)^2`` (``R`` the data range; 127.5 is the largest standard deviation of
  data in [0, 255]), reported as ``1 - that``;
* ``'no_norm'`` - without the normalisation by the local texture energy ``s_gan^2 + s_mse^2``: ``1 -
  (s_gan - s_mse)^2 / C``, clipped at 0.

Border rule: the maps have the full image size. Pixels closer than ``window // 2`` to an edge see the image
mirrored about its edge pixel (OpenCV's ``BORDER_REFLECT_101``, torch's ``'reflect'`` padding). Every other
pixel (the interior) sees only image pixels, so the interior equals the released code's "valid" mode result
(``(H - 10) x (W - 10)`` for the 11x11 window) exactly, up to floating point rounding.

Precision: the moments are computed in float64 (``G * (x^2) - mu^2`` cancels catastrophically in float32 in flat
regions of bright images, where errors of ~1e-3 in ``D`` appear); the variances and the final map are float32.
The error budget is tight: next to a flat window (variance 0) a variance error ``e`` moves ``D`` by up to
``sqrt(e / C)``, so keeping ``D`` within 1e-4 needs ``e`` below ~6e-7, far below float32's rounding of
``G * (x^2)`` (~4e-3 for bright pixels).

Speed: the numpy path filters row strips independently (each with its own halo), on a pool of
``cv2.getNumThreads()`` threads by default (OpenCV releases the GIL); the strips do not overlap, so the map is
bit-identical for any number of threads.
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np
import torch

MODES = ('relative', 'absolute', 'no_norm')
NUMERATORS = ('release', 'paper')


@dataclass(frozen=True)
class IndicatorConfig:
    """Settings of the indicator ``D``.

    Attributes:
        window (int): Odd Gaussian window size (default 11, the SSIM window).
        sigma (float): Gaussian sigma (default 1.5).
        c (float): Stabilising constant for data in [0, 255] (default ``(0.03 * 255) ** 2``); it is rescaled by
            ``(data_range / 255) ** 2`` for other data ranges.
        numerator (str): ``'release'`` (``+ C`` in the numerator, the authors' code) or ``'paper'`` (eq. 7).
        mode (str): ``'relative'`` (DeSRA), ``'absolute'`` or ``'no_norm'`` (ablations, see module docstring).
    """
    window: int = 11
    sigma: float = 1.5
    c: float = (0.03 * 255)**2
    numerator: str = 'release'
    mode: str = 'relative'

    def __post_init__(self) -> None:
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f'indicator window must be odd and positive, got {self.window}')
        if self.sigma <= 0:
            raise ValueError(f'indicator sigma must be positive, got {self.sigma}')
        if self.c < 0:
            raise ValueError(f'indicator constant C must be >= 0, got {self.c}')
        if self.numerator not in NUMERATORS:
            raise ValueError(f'indicator numerator must be one of {NUMERATORS}, got {self.numerator!r}')
        if self.mode not in MODES:
            raise ValueError(f'indicator mode must be one of {MODES}, got {self.mode!r}')
        if self.mode == 'no_norm' and self.c == 0:
            raise ValueError('indicator mode no_norm divides by C: C must be > 0')


def gaussian_kernel_1d(window: int, sigma: float) -> np.ndarray:
    """Normalised 1D Gaussian, the same numbers as ``cv2.getGaussianKernel(window, sigma)`` (float64).

    Args:
        window (int): Odd kernel size.
        sigma (float): Standard deviation.

    Returns:
        np.ndarray: Shape ``(window,)`` float64, sums to 1.
    """
    x = np.arange(window, dtype=np.float64) - (window - 1) / 2
    kernel = np.exp(-x * x / (2 * sigma * sigma))
    return kernel / kernel.sum()


def _check_pair_shapes(shape_mse: Tuple[int, ...], shape_gan: Tuple[int, ...], window: int,
                       hw: Tuple[int, int]) -> None:
    """Validate a pair's shapes: equal, and each side at least one window long."""
    if tuple(shape_mse) != tuple(shape_gan):
        raise ValueError(f'MSE-SR and GAN-SR shapes differ: {tuple(shape_mse)} vs {tuple(shape_gan)}')
    if min(hw) < window:
        raise ValueError(f'image size {hw[0]}x{hw[1]} is smaller than the {window}x{window} indicator window')


def _combine(v_mse, v_gan, c: float, cfg: IndicatorConfig, data_range: float, sqrt):
    """Indicator from the two variance maps (numpy arrays or tensors, modified in place where possible)."""
    s_mse, s_gan = sqrt(v_mse), sqrt(v_gan)
    if cfg.mode == 'absolute':
        diff = s_gan - s_mse
        return 1 - diff * diff / (data_range / 2)**2
    if cfg.mode == 'no_norm':
        diff = s_gan - s_mse
        return (1 - diff * diff / c).clip(min=0)
    numer = 2 * s_gan * s_mse
    if cfg.numerator == 'release':
        numer += c
    denom = v_gan + v_mse
    denom += c
    if c == 0:
        # 0/0 (both flat) means "same complexity": D = 1.
        flat = denom == 0
        numer[flat] = 1
        denom[flat] = 1
    numer /= denom
    return numer


def indicator_numpy(y_mse: np.ndarray,
                    y_gan: np.ndarray,
                    cfg: IndicatorConfig = IndicatorConfig(),
                    data_range: float = 255.0,
                    num_threads: Optional[int] = None) -> np.ndarray:
    """Indicator map ``D`` with OpenCV (separable float64 Gaussian filtering of all channels at once).

    Args:
        y_mse (np.ndarray): MSE-SR output, ``HxWxC`` (or ``HxW``, or a batch ``NxHxWxC``), any numeric dtype,
            values in ``[0, data_range]``.
        y_gan (np.ndarray): GAN-SR output of the same shape.
        cfg (IndicatorConfig): Indicator settings.
        data_range (float): Value range of the inputs (255 for uint8).
        num_threads (int | None): Threads filtering row strips in parallel; None follows OpenCV's setting
            (``cv2.getNumThreads()``, changed with ``cv2.setNumThreads``). The result does not depend on it.

    Returns:
        np.ndarray: ``HxW`` (or ``NxHxW``) float32 map, full image size (see the module's border rule).

    Raises:
        ValueError: If the shapes differ, the image is smaller than the window or ``num_threads < 1``.
    """
    y_mse, y_gan = np.asarray(y_mse), np.asarray(y_gan)
    if num_threads is not None and num_threads < 1:
        raise ValueError(f'num_threads must be >= 1, got {num_threads}')
    if y_mse.ndim == 4:
        _check_pair_shapes(y_mse.shape, y_gan.shape, cfg.window, y_mse.shape[1:3])
        return np.stack([indicator_numpy(a, b, cfg, data_range, num_threads) for a, b in zip(y_mse, y_gan)])
    if y_mse.ndim not in (2, 3):
        raise ValueError(f'expected HxW, HxWxC or NxHxWxC images, got shape {y_mse.shape}')
    _check_pair_shapes(y_mse.shape, y_gan.shape, cfg.window, y_mse.shape[:2])
    channels = 1 if y_mse.ndim == 2 else y_mse.shape[2]
    if channels > 4:  # OpenCV's fast paths take up to 4 channels: average groups of channels
        groups = [(i, min(channels, i + 4)) for i in range(0, channels, 4)]
        return sum((stop - start) * indicator_numpy(y_mse[:, :, start:stop], y_gan[:, :, start:stop], cfg, data_range,
                                                    num_threads) for start, stop in groups) / np.float32(channels)
    if y_mse.dtype not in (np.uint8, np.float64):
        y_mse, y_gan = y_mse.astype(np.float64), y_gan.astype(np.float64)
    kernel = gaussian_kernel_1d(cfg.window, cfg.sigma)
    c = np.float32(cfg.c * (data_range / 255.0)**2)
    pad = cfg.window // 2
    height = y_mse.shape[0]
    # Mirror once (module border rule), then filter strips of rows with their halo in 'valid' mode: the working
    # set stays in cache, the peak memory is a few strips whatever the image size, and strips run in parallel.
    padded = [cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT_101) for img in (y_mse, y_gan)]
    mean_weights = np.full((1, channels), 1 / channels, np.float32)
    out = np.empty(y_mse.shape[:2], np.float32)

    def fill_strip(top: int) -> None:
        bottom = min(height, top + _STRIP_ROWS)
        var_mse, var_gan = (_variance_strip(p[top:bottom + 2 * pad], kernel, pad) for p in padded)
        d = _combine(var_mse, var_gan, c, cfg, data_range, cv2.sqrt)
        out[top:bottom] = d if channels == 1 else cv2.transform(d, mean_weights)

    tops = range(0, height, _STRIP_ROWS)
    workers = min(len(tops), num_threads or max(1, cv2.getNumThreads()))
    if workers == 1:
        for top in tops:
            fill_strip(top)
    else:
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(fill_strip, tops):  # re-raises a strip's exception here
                pass
    return out


# Rows per strip in indicator_numpy (about 3 MB of float64 per strip for a 2048-pixel-wide RGB image).
_STRIP_ROWS = 64


def _variance_strip(block: np.ndarray, kernel: np.ndarray, pad: int) -> np.ndarray:
    """Gaussian local variance (float32) of the pixels of a padded uint8/float64 block that have a full window.

    The moments are float64 (the squares of uint8 data are exact in uint16).
    """
    if block.dtype == np.uint8:
        block = block.astype(np.uint16)  # OpenCV filters uint16 into float64 faster than uint8
    squares = cv2.multiply(block, block)  # exact for uint8 data: 255^2 < 2^16
    inner = (slice(pad, block.shape[0] - pad), slice(pad, block.shape[1] - pad))  # [pad:-pad] is empty for pad 0
    mu = cv2.sepFilter2D(block, cv2.CV_64F, kernel, kernel)[inner]
    ex2 = cv2.sepFilter2D(squares, cv2.CV_64F, kernel, kernel)[inner]
    var = cv2.subtract(ex2, cv2.multiply(mu, mu), dtype=cv2.CV_32F)  # cancellation in float64, then float32
    return np.maximum(var, 0, out=var)


def local_variance(img: np.ndarray, window: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Gaussian-weighted local variance per pixel and channel: the texture complexity of DeSRA-det step 1.

    The border of half a window is mirrored (reflect-101), as in :func:`indicator_numpy`.

    Args:
        img (np.ndarray): HxW or HxWxC uint8 or float image, pixel values in [0, 255].
        window (int): Odd window size.
        sigma (float): Gaussian sigma.

    Returns:
        np.ndarray: HxW or HxWxC float32 local variance.
    """
    pad = window // 2
    block = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    if block.dtype != np.uint8:
        block = block.astype(np.float64)
    return _variance_strip(block, gaussian_kernel_1d(window, sigma), pad)


def _sep_filter_torch(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filtering of the last two dims by the same 1D kernel (weighted sums of shifted slices).

    Slices keep memory at two extra copies of ``x`` and are faster than grouped ``conv2d`` in float64 on CPU.
    """
    k = kernel.numel()
    w_out = x.shape[-1] - k + 1
    rows = x[..., 0:w_out] * kernel[0]
    for i in range(1, k):
        rows.add_(x[..., i:i + w_out], alpha=float(kernel[i]))
    h_out = x.shape[-2] - k + 1
    out = rows[..., 0:h_out, :] * kernel[0]
    for i in range(1, k):
        out.add_(rows[..., i:i + h_out, :], alpha=float(kernel[i]))
    return out


def indicator_torch(y_mse: torch.Tensor,
                    y_gan: torch.Tensor,
                    cfg: IndicatorConfig = IndicatorConfig(),
                    data_range: float = 255.0,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Indicator map ``D`` in torch, on the tensors' device (CPU or CUDA), batched.

    Args:
        y_mse (torch.Tensor): MSE-SR output, ``NxCxHxW`` or ``CxHxW``, values in ``[0, data_range]``
            (BasicSR tensors: ``data_range=1``).
        y_gan (torch.Tensor): GAN-SR output, same shape and device.
        cfg (IndicatorConfig): Indicator settings.
        data_range (float): Value range of the inputs.
        dtype (torch.dtype): Computation dtype of the moments. float64 (default) matches the numpy version to
            ~1e-7; float32 is faster but loses ~1e-3 in flat bright regions.

    Returns:
        torch.Tensor: ``NxHxW`` (or ``HxW`` for unbatched input) float32 map, full image size.

    Raises:
        ValueError: If the shapes differ or the image is smaller than the window.
    """
    if y_mse.dim() == 3:
        return indicator_torch(y_mse[None], y_gan[None], cfg, data_range, dtype)[0]
    if y_mse.dim() != 4:
        raise ValueError(f'expected NxCxHxW or CxHxW tensors, got shape {tuple(y_mse.shape)}')
    _check_pair_shapes(y_mse.shape, y_gan.shape, cfg.window, tuple(y_mse.shape[-2:]))
    kernel = torch.from_numpy(gaussian_kernel_1d(cfg.window, cfg.sigma)).to(dtype)
    pad = cfg.window // 2
    c = cfg.c * (data_range / 255.0)**2
    n, ch = y_mse.shape[:2]
    x = torch.cat([y_mse, y_gan], 1).to(dtype)
    x = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode='reflect')
    moments = _sep_filter_torch(torch.cat([x, x * x], 1), kernel)
    del x
    mu, ex2 = moments[:, :2 * ch], moments[:, 2 * ch:]
    var = ex2.sub_(mu * mu).clamp_(min=0)
    d = _combine(var[:, :ch], var[:, ch:], c, cfg, data_range, torch.sqrt)
    return d.mean(dim=1).float()
