"""The DiffGAR restorer: a class-conditional image-to-image diffusion U-Net on pixels or on autoencoder latents.

* **Input:** the noisy target (image or latent) concatenated with the image with artifacts (or its latent) as the
  condition: ``2C`` channels in, ``C`` out (``C`` = 3 in pixel space, the autoencoder's latent channels in latent
  space).
* **Classes:** ``diffusers.UNet2DModel`` with ``num_class_embeds`` and ``class_embed_type=None``: a learnt class
  embedding is added to the timestep embedding. Class index :data:`MASK_INDEX` (0) is ``[MASK]``, the unknown
  class; the artifact classes follow in the order of :attr:`RestorerConfig.classes` (index ``i + 1``).
* **Training:** ``DDPMScheduler`` with ``train_timesteps`` steps; the loss is the MSE of the U-Net's prediction:
  the noise (``epsilon``, DiffGAR's), the velocity (``v_prediction``) or the clean target itself (``sample``)
  (:attr:`RestorerConfig.prediction`, diffusers' ``prediction_type``).
* **Residual target** (:attr:`RestorerConfig.residual`): diffuse the correction ``clean - artifact`` instead of the
  clean image, and add the condition back after sampling. The correction is zero wherever the image is already
  clean, so a small restorer that has not learnt a region leaves it nearly as it was instead of painting noise or
  a shifted tone (residual diffusion, as in SR3's and ResShift's image-to-image samplers).
* **Sampling:** ``DDIMScheduler`` (``eta`` 0, deterministic given the initial noise) with classifier-free guidance
  ``eps = eps_mask + s * (eps_class - eps_mask)``; ``s = 1`` (or the ``[MASK]`` class itself) needs one U-Net pass
  per step. The noise prediction of large images is blended from overlapping tiles at every step
  (:mod:`.tiling`), so an image of any size is one sample without seams.
* **Space:** pixels in [-1, 1] by default; with :attr:`RestorerConfig.autoencoder`, the latents of a diffusers
  ``AutoencoderKL`` folder (e.g. Stable Diffusion's VAE) loaded from disk only (``local_files_only``).
* **Regression baseline** (:attr:`RestorerConfig.objective` ``'regression'``): the same U-Net, classes and data
  without diffusion: it sees the image with artifacts alone (``C`` channels in) at timestep 0 and predicts the
  residual to the clean image in one pass, trained with an L1 loss. It shows what the diffusion part adds.
"""
import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Literal, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.restore.tiling import blend_tiles

#: Class index of ``[MASK]`` (the unknown class of blind restoration); artifact class ``i`` has index ``i + 1``.
MASK_INDEX = 0
#: How ``[MASK]`` is named in messages and records.
MASK_NAME = '[MASK]'

BetaSchedule = Literal['linear', 'scaled_linear', 'squaredcos_cap_v2']
Objective = Literal['diffusion', 'regression']
Prediction = Literal['epsilon', 'v_prediction', 'sample']


@dataclass(frozen=True)
class RestorerConfig:
    """Architecture and diffusion settings of a restorer (stored in its checkpoint).

    Attributes:
        classes (tuple[str, ...]): Artifact class names (class ``i`` has embedding ``i + 1``; 0 is ``[MASK]``).
        crop_size (int): Side of the training crops in pixels, and of the restoring tiles.
        block_out_channels (tuple[int, ...]): U-Net channels per resolution (each level but the last halves it).
        layers_per_block (int): ResNet layers per U-Net block.
        attention (bool): Self-attention in the two lowest-resolution levels (DDPM's U-Net has it at 16x16).
        train_timesteps (int): DDPM steps ``T`` of the noise schedule.
        beta_schedule (str): The noise schedule of ``diffusers.DDPMScheduler``.
        autoencoder (str | None): A diffusers ``AutoencoderKL`` folder: diffuse its latents (None: pixels).
        objective (str): ``'diffusion'`` (DiffGAR) or ``'regression'`` (the one-pass L1 baseline; see the module
            docstring).
        prediction (str): What the diffusion U-Net predicts: ``'epsilon'`` (the noise), ``'v_prediction'`` or
            ``'sample'`` (diffusers' ``prediction_type``).
        residual (bool): Diffuse the correction ``clean - artifact`` instead of the clean image (diffusion only).
    """
    classes: Tuple[str, ...]
    crop_size: int = 64
    block_out_channels: Tuple[int, ...] = (32, 64)
    layers_per_block: int = 1
    attention: bool = False
    train_timesteps: int = 1000
    beta_schedule: BetaSchedule = 'linear'
    autoencoder: Optional[str] = None
    objective: Objective = 'diffusion'
    prediction: Prediction = 'epsilon'
    residual: bool = False

    def to_dict(self) -> Dict[str, Any]:
        """Plain types for a checkpoint (loadable with ``weights_only``)."""
        data = dataclasses.asdict(self)
        return dict(data, classes=list(self.classes), block_out_channels=list(self.block_out_channels))

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> 'RestorerConfig':
        """The config of :meth:`to_dict`."""
        return cls(**dict(data, classes=tuple(data['classes']), block_out_channels=tuple(data['block_out_channels'])))

    @property
    def space(self) -> str:
        """``'latent'`` with an autoencoder, else ``'pixel'``."""
        return 'latent' if self.autoencoder else 'pixel'

    def class_index(self, name: Optional[str]) -> int:
        """The embedding index of a class name (None or ``[MASK]``: :data:`MASK_INDEX`).

        Raises:
            DesraSettingsError: If the restorer was not trained on that class.
        """
        if name is None or name == MASK_NAME:
            return MASK_INDEX
        if name not in self.classes:
            raise DesraSettingsError(f'--class {name}: not a class of this restorer; choose from '
                                     f'{", ".join(self.classes)} (or leave it out for blind restoration)')
        return self.classes.index(name) + 1


def load_autoencoder(path: str) -> nn.Module:
    """A diffusers ``AutoencoderKL`` from a local folder (``config.json`` + weights); nothing is downloaded.

    Args:
        path (str): The folder (``save_pretrained`` output, e.g. Stable Diffusion's ``vae`` folder).

    Returns:
        diffusers.AutoencoderKL: The frozen autoencoder in eval mode.

    Raises:
        DesraSettingsError: If the folder is missing or holds no loadable ``AutoencoderKL``.
    """
    import os.path as osp

    from diffusers import AutoencoderKL
    if not osp.isdir(path):
        raise DesraSettingsError(f'autoencoder {path}: no such folder (give a diffusers AutoencoderKL folder with '
                                 'config.json and its weights)')
    try:
        vae = AutoencoderKL.from_pretrained(path, local_files_only=True, low_cpu_mem_usage=False)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise DesraSettingsError(f'autoencoder {path}: not a loadable diffusers AutoencoderKL folder ({detail})') \
            from err
    vae.requires_grad_(False)
    return vae.eval()


def build_unet(config: RestorerConfig, channels: int) -> nn.Module:
    """The class-conditional U-Net of a restorer.

    Args:
        config (RestorerConfig): The architecture.
        channels (int): Channels of the restored image or latent (a diffusion U-Net's input has twice as many:
            the noisy target and the condition).

    Returns:
        diffusers.UNet2DModel: The U-Net.
    """
    from diffusers import UNet2DModel
    levels = len(config.block_out_channels)
    attended = [config.attention and level >= levels - 2 and levels > 1 for level in range(levels)]
    down = tuple('AttnDownBlock2D' if a else 'DownBlock2D' for a in attended)
    up = tuple('AttnUpBlock2D' if a else 'UpBlock2D' for a in reversed(attended))
    return UNet2DModel(
        in_channels=(2 if config.objective == 'diffusion' else 1) * channels,
        out_channels=channels,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=tuple(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        add_attention=config.attention,
        norm_num_groups=min(32, min(config.block_out_channels)),
        class_embed_type=None,
        num_class_embeds=len(config.classes) + 1)


class Restorer(nn.Module):
    """U-Net, noise schedules and optional autoencoder of one restorer (see the module docstring).

    Args:
        config (RestorerConfig): The architecture.
        autoencoder (nn.Module | None): The loaded autoencoder of ``config.autoencoder`` (loaded here when None).
    """

    def __init__(self, config: RestorerConfig, autoencoder: Optional[nn.Module] = None) -> None:
        super().__init__()
        from diffusers import DDPMScheduler
        self.config = config
        self.autoencoder = None
        channels, self.latent_factor = 3, 1
        if config.autoencoder:
            self.autoencoder = autoencoder if autoencoder is not None else load_autoencoder(config.autoencoder)
            channels = self.autoencoder.config.latent_channels
            self.latent_factor = 2**(len(self.autoencoder.config.block_out_channels) - 1)
        self.unet = build_unet(config, channels)
        # A residual lies in [-2, 2] (the difference of two images in [-1, 1]): the sampler clips its estimate there.
        self.train_scheduler = DDPMScheduler(num_train_timesteps=config.train_timesteps,
                                             beta_schedule=config.beta_schedule, prediction_type=config.prediction,
                                             clip_sample_range=2.0 if config.residual else 1.0)

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this (autoencoder and U-Net downsampling); inputs are padded to it."""
        return self.latent_factor * 2**(len(self.config.block_out_channels) - 1)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> what is diffused (the images themselves, or scaled autoencoder latents)."""
        if self.autoencoder is None:
            return images
        latents = self.autoencoder.encode(images).latent_dist.mode()
        return latents * self.autoencoder.config.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`encode`: images in about [-1, 1]."""
        if self.autoencoder is None:
            return latents
        return self.autoencoder.decode(latents / self.autoencoder.config.scaling_factor).sample

    def loss(self, artifact: torch.Tensor, clean: torch.Tensor, labels: torch.Tensor,
             generator: Optional[torch.Generator] = None, unet: Optional[nn.Module] = None) -> torch.Tensor:
        """The DDPM noise-prediction loss of one batch (a regression restorer: the L1 loss of its restoration).

        Args:
            artifact (torch.Tensor): ``NxCxHxW`` images with artifacts, in [-1, 1].
            clean (torch.Tensor): Their clean targets, in [-1, 1].
            labels (torch.Tensor): ``N`` class indices (:data:`MASK_INDEX` for ``[MASK]``).
            generator (torch.Generator | None): Draws the timesteps and the noise.
            unet (nn.Module | None): The U-Net to train (default: :attr:`unet`; e.g. its DistributedDataParallel
                wrapper).

        Returns:
            torch.Tensor: The mean squared error of the prediction (noise, velocity or target; regression: the mean
            absolute error of the restoration).
        """
        with torch.no_grad():
            condition, target = self.encode(artifact), self.encode(clean)
        net = self.unet if unet is None else unet
        if self.config.objective == 'regression':
            zero = torch.zeros(target.shape[0], dtype=torch.long, device=target.device)
            restored = condition + net(condition, zero, class_labels=labels).sample
            return F.l1_loss(restored.float(), target.float())
        if self.config.residual:
            target = target - condition
        noise = torch.randn(target.shape, generator=generator, device=target.device, dtype=target.dtype)
        steps = torch.randint(0, self.config.train_timesteps, (target.shape[0], ), generator=generator,
                              device=target.device)
        noisy = self.train_scheduler.add_noise(target, noise, steps)
        predicted = net(torch.cat([noisy, condition], dim=1), steps, class_labels=labels).sample
        if self.config.prediction == 'epsilon':
            wanted = noise
        elif self.config.prediction == 'sample':
            wanted = target
        else:
            wanted = self.train_scheduler.get_velocity(target, noise, steps)
        return F.mse_loss(predicted.float(), wanted.float())

    def _guided(self, x: torch.Tensor, t: torch.Tensor, label: int, guidance: float) -> torch.Tensor:
        """Classifier-free guided U-Net prediction (noise, velocity or target; a regression's residual) of tiles."""
        n = x.shape[0]
        if guidance == 1 or label == MASK_INDEX:
            labels = torch.full((n, ), label, device=x.device, dtype=torch.long)
            return self.unet(x, t, class_labels=labels).sample
        labels = torch.tensor([label] * n + [MASK_INDEX] * n, device=x.device)
        conditional, blind = self.unet(torch.cat([x, x]), t, class_labels=labels).sample.chunk(2)
        return blind + guidance * (conditional - blind)

    @torch.no_grad()
    def sample(self, artifact: torch.Tensor, label: int, guidance: float, steps: int, generator: torch.Generator,
               tile: Optional[int] = None, overlap: Optional[int] = None) -> torch.Tensor:
        """Restore one image by guided DDIM sampling, denoising overlapping tiles blended at every step.

        A regression restorer predicts the restoration of the tiles in one pass instead (``steps`` and the generator
        are not used).

        Args:
            artifact (torch.Tensor): ``1x3xHxW`` image in [-1, 1], sides multiples of :attr:`multiple`.
            label (int): Class index (:data:`MASK_INDEX`: blind).
            guidance (float): Classifier-free guidance scale, >= 1 (1: the class's prediction alone).
            steps (int): DDIM steps.
            generator (torch.Generator): Draws the initial noise (the result is deterministic given it).
            tile (int | None): Tile side in pixels (default: ``crop_size``).
            overlap (int | None): Tile overlap in pixels (default: a quarter of the tile).

        Returns:
            torch.Tensor: ``1x3xHxW`` restored image in about [-1, 1].
        """
        tile = tile or self.config.crop_size
        overlap = tile // 4 if overlap is None else overlap
        tile_l, overlap_l = tile // self.latent_factor, overlap // self.latent_factor
        condition = self.encode(artifact)
        if self.config.objective == 'regression':
            zero = torch.zeros((), dtype=torch.long, device=condition.device)
            return self.decode(condition + blend_tiles(lambda crops: self._guided(crops, zero, label, guidance),
                                                       condition, tile_l, overlap_l))
        from diffusers import DDIMScheduler
        scheduler = DDIMScheduler.from_config(self.train_scheduler.config)
        scheduler.set_timesteps(steps, device=artifact.device)
        latents = torch.randn(condition.shape, generator=generator, device=generator.device, dtype=torch.float32)
        latents = latents.to(device=condition.device, dtype=condition.dtype)
        for t in scheduler.timesteps:
            def predict(crops: torch.Tensor, t: torch.Tensor = t) -> torch.Tensor:
                return self._guided(crops, t, label, guidance)

            output = blend_tiles(predict, torch.cat([latents, condition], dim=1), tile_l, overlap_l)
            latents = scheduler.step(output, t, latents, eta=0.0).prev_sample
        return self.decode(condition + latents if self.config.residual else latents)


def pad_to_multiple(images: torch.Tensor, multiple: int, least: Sequence[int] = (0, 0)) -> torch.Tensor:
    """Reflect-pad the bottom and right of ``NxCxHxW`` images to multiples of ``multiple`` (and at least ``least``).

    Args:
        images (torch.Tensor): The images.
        multiple (int): The required multiple.
        least (Sequence[int]): Least height and width.

    Returns:
        torch.Tensor: The padded images (crop ``[..., :H, :W]`` to undo).
    """
    height, width = images.shape[-2:]
    new_h = max(-(-height // multiple) * multiple, least[0])
    new_w = max(-(-width // multiple) * multiple, least[1])
    if (new_h, new_w) == (height, width):
        return images
    mode = 'reflect' if new_h - height < height and new_w - width < width else 'replicate'
    return F.pad(images, (0, new_w - width, 0, new_h - height), mode=mode)
