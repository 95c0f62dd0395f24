"""Restore job: remove generative artifacts from a folder of images with a trained DiffGAR restorer.

For every image of ``input``, ``OUT/NAME.png`` is its restoration by guided DDIM sampling
(:mod:`desra_basicsr.restore`): blind by default (the ``[MASK]`` class), non-blind with ``cls`` (a class the
restorer was trained on), with classifier-free guidance ``guidance`` between that class and ``[MASK]`` (1: the
class alone). Images of any size are restored in overlapping tiles blended at every denoising step (no seams).
With ``masks`` (``desra detect`` or localiser masks, paired by file stem), only the inside of each mask is restored,
feathered inwards over ``feather`` pixels, and every pixel outside it is the input's, bit for bit; with ``outside``
above 0 the whole image is restored and applied at that strength outside the masks (fully inside them); with
``passes`` above 1 the inside of the masks is restored again, each pass on the last one's output (``outside``
applies once).

The initial noise of an image is drawn on the CPU from ``seed`` and the image's name, so a result depends neither on
the device nor on the other images or the torchrun shard. The job runs on the folder-job core
(:mod:`desra_basicsr.jobs.core`): resumable, torchrun-sharded, ``OUT/summary.json`` recording the options and the
checkpoint's SHA-256. The checkpoint, the class and the step count are checked before any image is read.

Example::

    from desra_basicsr.jobs.restore import RestoreSettings, run
    result = run(RestoreSettings(input='sr/gan', out='restored', checkpoint='runs/restorer/restorer.pth',
                                 masks='masks', cls='noise', guidance=2.0, seed=0))
"""
import os.path as osp
import time
import zlib
from dataclasses import dataclass
from typing import Dict, Optional

from desra_basicsr.demo import PRETRAINED
from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.folders import check_out_dir, pair_inputs
from desra_basicsr.jobs.core import FolderJob, JobItem, JobResult, local_rank, run_job
from desra_basicsr.settings import Settings, setting

#: The demo restorer the project trained on the corpus's training split (``options/restore/demo.yml``), committed.
DEMO_RESTORER = osp.join(PRETRAINED, 'restore_demo.pth')
#: Largest classifier-free guidance scale (DiffGAR and image diffusion models use 1-10).
MAX_GUIDANCE = 50.0
MAX_STEPS = 1000
MAX_SEED = 2**32 - 1
#: Tile side limits in pixels.
MIN_TILE, MAX_TILE = 16, 4096
#: Largest feather in pixels.
MAX_FEATHER = 512
#: Most restoration passes inside the masks.
MAX_PASSES = 10


@dataclass(frozen=True)
class RestoreSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        input (str): Folder of images with artifacts.
        out (str): Output folder.
        checkpoint (str): A restorer checkpoint (``desra restore train``'s ``restorer.pth``; default: the committed
            demo restorer :data:`DEMO_RESTORER`).
        cls (str | None): The artifact class (``--class``): non-blind restoration; None: blind (``[MASK]``).
        guidance (float): Classifier-free guidance scale, in [1, :data:`MAX_GUIDANCE`]; above 1 needs ``cls``, a
            class other than ``[MASK]``.
        steps (int): DDIM steps, in [1, the checkpoint's training timesteps].
        seed (int): Seed of the initial noise.
        masks (str | None): Folder of artifact masks (same stems and sizes): restore only inside them.
        feather (int): Feather of the masks in pixels (0: hard edges).
        outside (float): Strength of the restoration outside the masks, in [0, 1] (0: every pixel outside is the
            input's; needs ``masks``).
        passes (int): Restorations of the inside of the masks, each on the last one's output, in [1,
            :data:`MAX_PASSES`] (above 1 needs ``masks``).
        tile (int | None): Tile side in pixels (None: the checkpoint's training crop).
        overlap (int | None): Tile overlap in pixels, less than the tile (None: a quarter of the tile).
        device (str): ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        overwrite (bool): Compute every output again, even in a folder made with other settings.
        progress (bool): Show a progress bar.
    """
    input: str = setting(kind='path')
    out: str = setting(kind='path')
    checkpoint: str = setting(DEMO_RESTORER, kind='path')
    cls: Optional[str] = setting(None, flag='--class')
    guidance: float = setting(1.0, lo=1, hi=MAX_GUIDANCE)
    steps: int = setting(30, lo=1, hi=MAX_STEPS)
    seed: int = setting(0, lo=0, hi=MAX_SEED)
    masks: Optional[str] = setting(None, kind='path')
    feather: int = setting(8, lo=0, hi=MAX_FEATHER)
    outside: float = setting(0.0, lo=0, hi=1)
    passes: int = setting(1, lo=1, hi=MAX_PASSES)
    tile: Optional[int] = setting(None, lo=MIN_TILE, hi=MAX_TILE)
    overlap: Optional[int] = setting(None, lo=0, hi=MAX_TILE)
    device: str = setting('auto', kind='device')
    overwrite: bool = False
    progress: bool = True

    def check(self) -> None:
        """Guidance needs a class, ``outside`` and ``passes`` masks; the overlap must be shorter than the tile.

        Raises:
            DesraSettingsError: If ``guidance`` > 1 without ``cls``, ``outside`` > 0 or ``passes`` > 1 without
                ``masks``, or ``overlap`` >= ``tile``.
        """
        if self.outside > 0 and not self.masks:
            raise DesraSettingsError(f'--outside {self.outside:g}: the strength outside the masks needs --masks '
                                     '(without masks the whole image is restored)')
        if self.passes > 1 and not self.masks:
            raise DesraSettingsError(f'--passes {self.passes}: further passes restore the inside of the masks; give '
                                     '--masks too')
        if self.guidance != 1 and self.cls is None:
            raise DesraSettingsError(f'--guidance {self.guidance:g}: guidance mixes a class\'s prediction with the '
                                     'blind one; give --class NAME too, or leave --guidance at 1')
        if self.tile is not None and self.overlap is not None and self.overlap >= self.tile:
            raise DesraSettingsError(f'--overlap {self.overlap}: must be less than --tile {self.tile}')

    def input_dirs(self) -> Dict[str, str]:
        """The input folders by role (``masks`` only when given)."""
        return {'input': self.input, **({'masks': self.masks} if self.masks else {})}


def image_seed(seed: int, name: str) -> int:
    """The seed of one image's initial noise: ``seed`` mixed with the image's name.

    Args:
        seed (int): The job's seed.
        name (str): The image's stem.

    Returns:
        int: A 63-bit seed.
    """
    return (seed * 0x9E3779B1 + zlib.crc32(name.encode('utf-8'))) % 2**63


def run(settings: RestoreSettings) -> JobResult:
    """Restore a folder (see the module docstring).

    Args:
        settings (RestoreSettings): Inputs, checkpoint and sampling options.

    Returns:
        JobResult: Per image: ``class``, ``restored_pixels`` and ``seconds``.

    Raises:
        DesraSettingsError: Unusable settings, input folders or checkpoint (another kind, an unknown class, guidance
            with the class ``[MASK]``, more steps than its training timesteps), before any image is read.
    """
    import torch

    from desra_basicsr.devices import resolve_device
    from desra_basicsr.image_io import read_image, read_mask, stem, write_image
    from desra_basicsr.restore.checkpoint import load_restorer
    from desra_basicsr.restore.model import MASK_INDEX, MASK_NAME
    from desra_basicsr.restore.restoring import restore_image

    check_out_dir(settings.out, settings.input_dirs())
    pairs, failures = pair_inputs(settings.input_dirs())
    device = resolve_device(settings.device, local_rank())
    try:
        restorer = load_restorer(settings.checkpoint, device)
    except DesraInputError as err:
        where = (' (the demo restorer ships with the source checkout in experiments/pretrained_models/; '
                 'make restore-demo trains it again)') if settings.checkpoint == DEMO_RESTORER else ''
        raise DesraSettingsError(f'--checkpoint {err}{where}') from err
    config = restorer.config
    label = config.class_index(settings.cls)
    if label == MASK_INDEX and settings.guidance != 1:
        raise DesraSettingsError(f'--guidance {settings.guidance:g}: --class {MASK_NAME} is blind restoration, and '
                                 'guidance mixes a class\'s prediction with the blind one; give another class, or '
                                 'leave --guidance at 1')
    if settings.steps > config.train_timesteps:
        raise DesraSettingsError(f'--steps {settings.steps}: more than the {config.train_timesteps} timesteps the '
                                 f'restorer {settings.checkpoint} was trained with')
    tile = settings.tile or config.crop_size
    if tile % restorer.multiple or (settings.overlap or 0) % restorer.latent_factor:
        raise DesraSettingsError(f'--tile {tile} / --overlap {settings.overlap}: the tile must be a multiple of '
                                 f'{restorer.multiple} and the overlap of {restorer.latent_factor} for this restorer')
    if settings.overlap is not None and settings.overlap >= tile:
        raise DesraSettingsError(f'--overlap {settings.overlap}: must be less than the tile ({tile} pixels)')

    def process(item: JobItem) -> dict:
        started = time.time()
        img = read_image(item.inputs[0])
        mask = None
        if settings.masks:
            mask = read_mask(item.inputs[1])
            if mask.shape != img.shape[:2]:
                raise DesraInputError(f'{item.inputs[1]}: mask of {mask.shape[1]}x{mask.shape[0]} pixels for an '
                                      f'image of {img.shape[1]}x{img.shape[0]} ({item.inputs[0]})')
        with torch.inference_mode():
            out = restore_image(restorer, img, label, settings.guidance, settings.steps,
                                image_seed(settings.seed, item.name), tile, settings.overlap, mask, settings.feather,
                                settings.outside, settings.passes)
        write_image(item.outputs[0], out)
        whole = mask is None or settings.outside > 0
        return {'class': settings.cls or MASK_NAME, 'restored_pixels': img.shape[0] * img.shape[1] if whole else
                int(mask.sum()), 'seconds': round(time.time() - started, 3)}

    items = [JobItem(stem(pair[0]), tuple(pair), (osp.join(settings.out, f'{stem(pair[0])}.png'), )) for pair in pairs]
    recorded = ('input', 'masks', 'cls', 'guidance', 'steps', 'seed', 'feather', 'tile', 'overlap')
    # outside and passes are recorded only when used: at 0 and 1 the outputs are those of a folder written before the
    # options existed.
    recorded += ('outside', ) if settings.outside > 0 else ()
    recorded += ('passes', ) if settings.passes > 1 else ()
    return run_job(
        FolderJob(
            command='restore',
            out_dir=settings.out,
            input_dirs=settings.input_dirs(),
            settings={name: getattr(settings, name) for name in recorded},
            items=items,
            process=process,
            weights={'checkpoint': settings.checkpoint},
            failures=failures,
            desc='restore'),
        overwrite=settings.overwrite,
        progress=settings.progress)
