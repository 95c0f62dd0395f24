"""The DiffGAR restorer's parts: tiles blended without seams, the mask composite, the model in pixel and latent
space, guided sampling and its checkpoint kind."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.restore.checkpoint import load_restorer
from desra_basicsr.restore.masking import composite, feather_weights, region_of
from desra_basicsr.restore.model import MASK_INDEX, Restorer, RestorerConfig
from desra_basicsr.restore.restoring import restore_image
from desra_basicsr.restore.tiling import blend_tiles, tile_starts, window_1d

TINY = dict(classes=('noise', 'stripes'), crop_size=32, block_out_channels=(8, 16), train_timesteps=50)


@pytest.fixture(scope='module')
def restorer():
    torch.manual_seed(0)
    return Restorer(RestorerConfig(**TINY)).eval()


def test_tiles_cover_the_side_with_the_overlap():
    assert tile_starts(20, 32, 8) == [0]
    assert tile_starts(100, 32, 8) == [0, 24, 48, 68]
    w = window_1d(32, 8, torch.device('cpu'))
    assert (w > 0).all() and torch.allclose(w, w.flip(0)) and (w[8:24] == 1).all()


def test_a_pointwise_function_is_the_same_tiled_as_whole():
    x = torch.randn(1, 3, 70, 90)
    tiled = blend_tiles(lambda crops: crops * 2 + 1, x, tile=32, overlap=8, batch=3)
    assert torch.allclose(tiled, x * 2 + 1, atol=1e-5)


def test_blending_leaves_no_step_at_tile_borders():
    """A function giving each tile its own constant: the blend ramps between them, never jumps."""
    offsets = iter(torch.linspace(0, 1, 64))
    smooth = torch.zeros(1, 1, 96, 96)
    out = blend_tiles(lambda crops: torch.stack([torch.full_like(c, float(next(offsets))) for c in crops]),
                      smooth, tile=32, overlap=16, batch=1)
    jumps = max(out.diff(dim=-1).abs().max(), out.diff(dim=-2).abs().max())
    spread = out.max() - out.min()
    assert spread > 0.1 and jumps < spread * np.pi / 16  # a raised cosine over 16 pixels: no step


class PointwiseDenoiser(torch.nn.Module):
    """A U-Net stand-in that sees one pixel at a time (a 1x1 convolution scaled by the class): tile-invariant."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(6, 3, 1)

    def forward(self, x, t, class_labels):
        return SimpleNamespace(sample=self.conv(x) * (1 + class_labels.float()[:, None, None, None]))


def test_tiled_sampling_equals_whole_sampling_for_a_tile_invariant_denoiser():
    torch.manual_seed(0)
    model = Restorer(RestorerConfig(**TINY)).eval()
    model.unet = PointwiseDenoiser()
    image = torch.linspace(-1, 1, 64)[None, None, :, None].expand(1, 3, 64, 80).contiguous()
    with torch.no_grad():
        whole = model.sample(image, 1, 2.0, 4, torch.Generator().manual_seed(3), tile=128)
        tiled = model.sample(image, 1, 2.0, 4, torch.Generator().manual_seed(3), tile=32, overlap=8)
    assert torch.allclose(whole, tiled, atol=1e-4)


def test_feathered_composite_keeps_every_pixel_outside_the_mask():
    rng = np.random.default_rng(0)
    image, restored = (rng.integers(0, 256, (40, 50, 3), dtype=np.uint8) for _ in range(2))
    mask = np.zeros((40, 50), bool)
    mask[10:30, 5:25] = True
    weights = feather_weights(mask, 4)
    out = composite(image, restored, weights)
    assert (out[~mask] == image[~mask]).all()
    assert weights[20, 15] == 1 and 0 < weights[10, 15] < 1 and (weights[~mask] == 0).all()
    assert (out[20, 15] == restored[20, 15]).all()
    assert region_of(mask, 3) == (7, 33, 2, 28) and region_of(np.zeros((4, 4), bool), 3) is None


def test_one_training_step_and_restoration_in_pixel_space(restorer):
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    optimizer = torch.optim.AdamW(restorer.unet.parameters(), lr=1e-3)
    loss = restorer.loss(x, x.flip(-1), torch.tensor([MASK_INDEX, 1]), generator=torch.Generator().manual_seed(0))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    img = np.random.default_rng(0).integers(0, 256, (30, 45, 3), dtype=np.uint8)
    with torch.no_grad():
        out = restore_image(restorer, img, steps=2, seed=0)
    assert out.shape == img.shape and out.dtype == np.uint8


@pytest.mark.parametrize('label, guidance', [(MASK_INDEX, 1.0), (1, 1.0), (2, 3.0)])
def test_blind_non_blind_and_guided_outputs_are_deterministic_under_a_seed(restorer, label, guidance):
    img = np.random.default_rng(1).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    with torch.no_grad():
        runs = [restore_image(restorer, img, label, guidance, 2, seed) for seed in (5, 5, 6)]
    assert runs[0].shape == img.shape
    assert (runs[0] == runs[1]).all() and (runs[0] != runs[2]).any()


@pytest.mark.parametrize('height, width', [(1, 1), (2, 2), (2, 1)])
def test_images_of_a_few_pixels_are_restored(restorer, height, width):
    """Padded to two multiples at least: unpadded, a group norm of a single pixel per channel would fail."""
    img = np.random.default_rng(2).integers(0, 256, (height, width, 3), dtype=np.uint8)
    with torch.no_grad():
        out = restore_image(restorer, img, steps=2, seed=0)
    assert out.shape == img.shape and out.dtype == np.uint8


def test_passes_need_a_mask_and_at_least_one(restorer):
    img = np.zeros((16, 16, 3), np.uint8)
    for passes, mask in ((0, np.ones((16, 16), bool)), (2, None)):
        with pytest.raises(ValueError, match=f'passes {passes}: give 1, or more with a mask'):
            restore_image(restorer, img, steps=1, mask=mask, passes=passes)


@pytest.mark.parametrize('prediction', ['epsilon', 'v_prediction', 'sample'])
@pytest.mark.parametrize('residual', [False, True])
def test_every_prediction_type_trains_and_samples(prediction, residual):
    torch.manual_seed(0)
    model = Restorer(RestorerConfig(**TINY, prediction=prediction, residual=residual))
    assert model.train_scheduler.config.prediction_type == prediction
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    loss = model.loss(x, x.flip(-1), torch.tensor([MASK_INDEX, 1]), generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.unet.parameters() if p.requires_grad)
    img = np.random.default_rng(0).integers(0, 256, (30, 45, 3), dtype=np.uint8)
    with torch.no_grad():
        runs = [restore_image(model.eval(), img, 1, 2.0, 3, seed) for seed in (4, 4)]
    assert runs[0].shape == img.shape and (runs[0] == runs[1]).all()


def test_a_residual_restorer_that_predicts_no_correction_returns_its_input():
    """Residual diffusion samples the correction: a U-Net predicting a zero target (``sample``) gives back the
    image with artifacts itself, where a restorer of the clean image would give a flat grey one."""
    model = Restorer(RestorerConfig(**TINY, prediction='sample', residual=True))
    model.unet = torch.nn.Module()
    model.unet.forward = lambda x, t, class_labels: SimpleNamespace(sample=torch.zeros_like(x[:, :3]))
    image = torch.rand(1, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        out = model.sample(image, MASK_INDEX, 1.0, 5, torch.Generator().manual_seed(0))
    assert torch.allclose(out, image, atol=1e-5)


def test_the_regression_restorer_learns_a_fixed_correction():
    """L1 training of the one-pass baseline lowers its loss on one pair; tiled restoring equals whole restoring for
    a pointwise U-Net stand-in (one pass, no noise)."""
    torch.manual_seed(0)
    model = Restorer(RestorerConfig(**TINY, objective='regression'))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    optimizer = torch.optim.AdamW(model.unet.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model.loss(x, (x * 0.5).clamp(-1, 1), torch.tensor([MASK_INDEX, 1]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    model.unet = torch.nn.Module()
    model.unet.forward = lambda x, t, class_labels: SimpleNamespace(sample=-0.5 * x)
    image = torch.rand(1, 3, 64, 80) * 2 - 1
    with torch.no_grad():
        whole = model.sample(image, MASK_INDEX, 1.0, 30, torch.Generator(), tile=128)
        tiled = model.sample(image, MASK_INDEX, 1.0, 1, torch.Generator(), tile=32, overlap=8)
    assert torch.allclose(whole, image * 0.5, atol=1e-5) and torch.allclose(tiled, whole, atol=1e-5)


def test_classes_and_checkpoint_kinds(restorer, tmp_path):
    config = restorer.config
    assert config.class_index(None) == MASK_INDEX and config.class_index('stripes') == 2
    with pytest.raises(DesraSettingsError, match='--class cat: not a class'):
        config.class_index('cat')
    other = str(tmp_path / 'net_g.pth')
    torch.save({'params': {'w': torch.zeros(1)}}, other)
    with pytest.raises(DesraInputError, match='not a desra restorer checkpoint'):
        load_restorer(other, torch.device('cpu'))
    torch.save({'kind': 'desra-localizer', 'w': torch.zeros(1)}, other)
    with pytest.raises(DesraInputError, match="kind 'desra-localizer'"):
        load_restorer(other, torch.device('cpu'))
