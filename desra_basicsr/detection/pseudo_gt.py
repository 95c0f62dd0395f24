"""DeSRA's pseudo-GT merge (paper eq. 10): pure numpy / torch / OpenCV, no BasicSR, no mmsegmentation.

``y_pseudo = M * y_mse + (1 - M) * y_gan``: inside the detected artifact mask ``M`` the MSE-SR output replaces the
GAN-SR output. Two optional refinements, both off by default (the paper uses neither):

* ``dilate`` (pixels): grow the mask by a Euclidean disk of this radius, so the replacement also covers the
  fringe of an artifact region that the detector's morphology left out;
* ``feather`` (pixels): soft edges. The weight falls linearly from 1 at the (dilated) mask border to 0 at
  ``feather`` pixels outside it, so no seam appears where MSE-SR and GAN-SR textures meet. Pixels inside the mask
  keep weight 1: the artifact is always fully replaced.

With ``d`` the Euclidean distance of a pixel to the nearest mask pixel (0 inside), the weight is::

    w = 1 if d <= dilate else (clip((dilate + feather - d) / feather, 0, 1) if feather > 0 else 0)

Masks may be bool arrays, uint8 images (the rule of :func:`desra_basicsr.image_io.read_mask`: a mask of only 0 and 1
is binary with 1 the artifact, any other has ``> 127`` as artifact), or
float weights in ``[0, 1]`` (used as given when neither option is set; binarised at 0.5 otherwise). Images and
masks are numpy ``HxWxC`` / ``HxW`` (or ``HxWx1``) arrays, or torch tensors ``CxHxW`` / ``NxCxHxW`` with masks
``HxW`` / ``1xHxW`` / ``Nx1xHxW``.

``desra pseudo-gt``, the visual report and the fine-tuning dataset use this one merge; option files name it by type
(``transform: {type: ArtifactMaskTransform, dilate: 0, feather: 0}``), registered by
:mod:`desra_basicsr.data.artifact_mask_transform`.
"""
import math
from typing import Union

import cv2
import numpy as np
import torch

Array = Union[np.ndarray, torch.Tensor]


def _binary(mask: np.ndarray) -> np.ndarray:
    """Boolean artifact mask from a bool / uint8 (0/1, else > 127) / float (> 0.5) array."""
    if mask.dtype == bool:
        return mask
    if mask.dtype == np.uint8:
        return mask == 1 if mask.size and mask.max() <= 1 else mask > 127
    return mask > 0.5


def _check_weight(mask: np.ndarray) -> np.ndarray:
    """Float32 weight from a mask that is not refined (bool / uint8 binary; floats checked to lie in [0, 1])."""
    if mask.dtype == bool or mask.dtype == np.uint8:
        return _binary(mask).astype(np.float32)
    mask = mask.astype(np.float32, copy=False)
    if mask.size and (mask.min() < 0 or mask.max() > 1):
        raise ValueError(f'float masks must hold weights in [0, 1], got values in [{mask.min()}, {mask.max()}]')
    return mask


class ArtifactMaskTransform:
    """Merge MSE-SR and GAN-SR outputs with an artifact mask: ``M * y_mse + (1 - M) * y_gan``.

    Args:
        dilate (float): Grow the mask by this many pixels (Euclidean). Default 0 (off).
        feather (float): Width in pixels of the linear soft edge outside the mask. Default 0 (hard edges).
    """

    def __init__(self, dilate: float = 0, feather: float = 0) -> None:
        if dilate < 0 or feather < 0:
            raise ValueError(f'ArtifactMaskTransform: dilate and feather must be >= 0, got {dilate}, {feather}')
        self.dilate = float(dilate)
        self.feather = float(feather)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(dilate={self.dilate:g}, feather={self.feather:g})'

    @property
    def refines(self) -> bool:
        """True if dilation or feathering is on (the weight then depends on pixels around each pixel)."""
        return self.dilate > 0 or self.feather > 0

    @property
    def support(self) -> int:
        """Pixels around a pixel that its weight depends on: ``ceil(dilate + feather)`` (0 when not refined).

        The weight of a crop widened by ``support`` pixels on each side equals the full-image weight inside the
        crop, since any mask pixel nearer than ``dilate + feather`` lies in the widened window.
        """
        return int(math.ceil(self.dilate + self.feather))

    def _weight_2d(self, mask: np.ndarray) -> np.ndarray:
        """Weight map of one ``HxW`` numpy mask."""
        if not self.refines:
            return _check_weight(mask)
        binary = _binary(mask)
        if not binary.any():
            return np.zeros(binary.shape, np.float32)
        # Distance of every pixel to the nearest artifact pixel (0 inside the mask).
        dist = cv2.distanceTransform(np.where(binary, 0, 255).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        if self.feather > 0:
            return np.clip((self.dilate + self.feather - dist) / self.feather, 0, 1).astype(np.float32)
        return (dist <= self.dilate).astype(np.float32)

    def weight(self, mask: Array) -> Array:
        """Merge weight ``M`` in ``[0, 1]`` (float32) of a mask, dilated and feathered as configured.

        Args:
            mask (np.ndarray | torch.Tensor): Numpy ``HxW`` / ``HxWx1``, or tensor ``HxW`` / ``1xHxW`` /
                ``Nx1xHxW``.

        Returns:
            np.ndarray | torch.Tensor: Float32 weight of the same shape (tensors on the mask's device).
        """
        if torch.is_tensor(mask):
            if mask.dim() < 2:
                raise ValueError(f'mask tensor must be at least HxW, got shape {tuple(mask.shape)}')
            flat = mask.detach().reshape(-1, *mask.shape[-2:]).cpu().numpy()
            out = np.stack([self._weight_2d(m) for m in flat])
            return torch.from_numpy(out).reshape(mask.shape).to(mask.device)
        mask = np.asarray(mask)
        if mask.ndim == 3 and mask.shape[2] == 1:
            return self._weight_2d(mask[:, :, 0])[:, :, None]
        if mask.ndim != 2:
            raise ValueError(f'numpy mask must be HxW or HxWx1, got shape {mask.shape}')
        return self._weight_2d(mask)

    @staticmethod
    def merge(y_mse: Array, y_gan: Array, weight: Array) -> Array:
        """Blend with a precomputed weight (see :meth:`weight`); pixel-wise, so it commutes with cropping.

        Args:
            y_mse (np.ndarray | torch.Tensor): MSE-SR output, numpy ``HxWxC`` or tensor ``CxHxW`` / ``NxCxHxW``.
            y_gan (np.ndarray | torch.Tensor): GAN-SR output, same shape and type.
            weight (np.ndarray | torch.Tensor): Weight in ``[0, 1]``: numpy ``HxW`` / ``HxWx1``, tensor ``HxW`` /
                ``1xHxW`` / ``Nx1xHxW``.

        Returns:
            np.ndarray | torch.Tensor: The pseudo-GT, with the inputs' dtype (uint8 inputs are rounded).
        """
        if tuple(y_mse.shape) != tuple(y_gan.shape):
            raise ValueError(f'MSE-SR and GAN-SR shapes differ: {tuple(y_mse.shape)} vs {tuple(y_gan.shape)}')
        if torch.is_tensor(y_mse):
            hw = tuple(y_mse.shape[-2:])
            if tuple(weight.shape[-2:]) != hw:
                raise ValueError(f'mask size {tuple(weight.shape[-2:])} differs from image size {hw}')
            w = weight.to(device=y_mse.device, dtype=torch.float32)
            if w.dim() == 2:
                w = w[None]
            out = torch.lerp(y_gan.float(), y_mse.float(), w)
            return out.round().clamp(0, 255).to(y_mse.dtype) if y_mse.dtype == torch.uint8 else out.to(y_mse.dtype)
        y_mse, y_gan, w = np.asarray(y_mse), np.asarray(y_gan), np.asarray(weight, dtype=np.float32)
        if tuple(w.shape[:2]) != tuple(y_mse.shape[:2]):
            raise ValueError(f'mask size {tuple(w.shape[:2])} differs from image size {tuple(y_mse.shape[:2])}')
        if w.ndim == 2 and y_mse.ndim == 3:
            w = w[:, :, None]
        elif w.ndim == 3 and y_mse.ndim == 2:
            w = w[:, :, 0]
        out = y_gan.astype(np.float32) + w * (y_mse.astype(np.float32) - y_gan.astype(np.float32))
        if y_mse.dtype == np.uint8:
            return np.clip(np.round(out), 0, 255).astype(np.uint8)
        return out.astype(y_mse.dtype, copy=False)

    def __call__(self, y_mse: Array, y_gan: Array, mask: Array) -> Array:
        """Pseudo-GT ``M * y_mse + (1 - M) * y_gan`` (eq. 10) with the configured mask refinement.

        Args:
            y_mse (np.ndarray | torch.Tensor): MSE-SR output.
            y_gan (np.ndarray | torch.Tensor): GAN-SR output.
            mask (np.ndarray | torch.Tensor): Artifact mask (see the module docstring for accepted forms).

        Returns:
            np.ndarray | torch.Tensor: The pseudo-GT, same shape and dtype as the inputs.
        """
        return self.merge(y_mse, y_gan, self.weight(mask))
