"""Super-resolution job: run a BasicSR generator over a folder of LR images.

The generator comes from a BasicSR option file (``network_g``, ``path.pretrain_network_g``, ``path.param_key_g``)
or from an architecture name with constructor arguments and a weights file. Writes ``OUT/<stem>.png`` for each
image (the file stems detection pairs by) and ``OUT/summary.json`` (:mod:`desra_basicsr.jobs.core`; the weights
file's SHA-256 is part of the settings, so other weights are refused unless ``overwrite``; the device is not, so a
folder started on one device resumes on another). With ``colour_sigma``, each output then takes its LR input's low
frequencies (:func:`desra_basicsr.detection.colour_fix.colour_fix`), which removes the colour drift of GAN-SR models.

Example::

    from desra_basicsr.jobs.sr import SRSettings, run
    run(SRSettings(input='lr', out='sr/gan', arch='RRDBNet', arch_opt={'num_block': 23},
                   weights='RealESRGAN_x4plus.pth', tile=256, device='cuda', fp16=True))
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from desra_basicsr.errors import DesraSettingsError, settings_phase
from desra_basicsr.folders import check_out_dir, pair_inputs
from desra_basicsr.jobs.core import FolderJob, JobItem, JobResult, local_rank, run_job
from desra_basicsr.jobs.records import ItemRecord
from desra_basicsr.settings import Settings, setting

#: Largest ``tile`` and ``tile_pad`` (LR pixels).
MAX_TILE = 1 << 16


@dataclass(frozen=True)
class SRSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        input (str): Folder of LR images.
        out (str): Output folder (``OUT/<stem>.png``, ``summary.json``).
        opt (str | None): BasicSR option file; exclusive with ``arch``.
        arch (str | None): Registered architecture name (``RRDBNet``, ``SRVGGNetCompact``, ``SwinIR``, ...).
        arch_opt (dict): Constructor arguments of ``arch``.
        weights (str | None): Generator checkpoint; required with ``arch``, overrides the option file's path.
        param_key (str | None): Checkpoint key; None: ``params_ema``, else ``params``, else a bare state dict.
        tile (int): Tile size in LR pixels (0: whole images).
        tile_pad (int): Overlapping LR context around each tile.
        device (str): ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun, each rank takes its own GPU: ``cuda:N``
            means ``cuda:(N + LOCAL_RANK) % GPUs``).
        fp16 (bool): Half precision through ``torch.autocast`` (CUDA only).
        colour_sigma (float): Colour fix from the LR input, Gaussian sigma in SR pixels (0: none; 8 is two LR pixels
            at x4, the default of ``desra fuse --lr``).
        overwrite (bool): Recompute every output even when an earlier run with other settings wrote them.
        progress (bool): Show a progress bar.
    """
    input: str = setting(kind='path')
    out: str = setting(kind='path')
    opt: Optional[str] = setting(None, kind='path')
    arch: Optional[str] = None
    arch_opt: Dict[str, Any] = field(default_factory=dict)
    weights: Optional[str] = setting(None, kind='path')
    param_key: Optional[str] = None
    tile: int = setting(0, lo=0, hi=MAX_TILE)
    tile_pad: int = setting(10, lo=0, hi=MAX_TILE)
    device: str = setting('cpu', kind='device')
    fp16: bool = False
    colour_sigma: float = setting(0.0, lo=0, hi=MAX_TILE)
    overwrite: bool = False
    progress: bool = True

    def check(self) -> None:
        """One generator source: an option file, or an architecture with its weights."""
        if bool(self.opt) == bool(self.arch):
            raise DesraSettingsError('--opt / --arch: give exactly one of them')
        if self.opt and self.arch_opt:
            raise DesraSettingsError('--arch-opt: only with --arch (--opt takes network_g from the option file)')
        if self.arch and not self.weights:
            raise DesraSettingsError('--weights: required with --arch')


@dataclass(frozen=True)
class SRRecord(ItemRecord):
    """``summary.json`` record of one super-resolved image.

    Attributes:
        lr_size (list[int]): Width and height of the LR input.
        sr_size (list[int]): Width and height of the output.
    """
    lr_size: List[int]
    sr_size: List[int]


def run(settings: SRSettings) -> JobResult:
    """Super-resolve every image of ``settings.input``.

    Args:
        settings (SRSettings): Generator, inputs and outputs.

    Returns:
        JobResult: Counts of this run; ``items`` holds each image's record (:class:`SRRecord`).

    Raises:
        DesraSettingsError: For unusable settings (unknown architecture, weights that do not fit, empty folder,
            unusable output folder), before any image is processed.
    """
    inputs = {'input': settings.input}
    check_out_dir(settings.out, inputs)
    names, _ = pair_inputs(inputs)

    from desra_basicsr.detection.colour_fix import colour_fix
    from desra_basicsr.image_io import read_image, stem, write_image
    from desra_basicsr.inference import SRInferencer, build_generator, generator_from_options, size_multiple

    with settings_phase():
        if settings.opt:
            net, multiple, weights = generator_from_options(settings.opt, settings.weights, settings.param_key)
        else:
            net = build_generator(settings.arch, settings.arch_opt, settings.weights, settings.param_key)
            multiple, weights = size_multiple(settings.arch, settings.arch_opt), settings.weights
        inferencer = SRInferencer(
            net,
            device=settings.device,
            tile=settings.tile,
            tile_pad=settings.tile_pad,
            fp16=settings.fp16,
            size_multiple=multiple,
            local_rank=local_rank(),
            weights=weights)

    def process(item: JobItem) -> Dict[str, Any]:
        img = read_image(item.inputs[0])
        out = inferencer.enhance(img, item.inputs[0])
        if settings.colour_sigma:
            out = colour_fix(out, img, settings.colour_sigma)
        write_image(item.outputs[0], out)
        return SRRecord([int(img.shape[1]), int(img.shape[0])], [int(out.shape[1]), int(out.shape[0])]).fields()

    items = [JobItem(stem(path), (path, ), (osp.join(settings.out, f'{stem(path)}.png'), )) for (path, ) in names]
    job_settings = {
        'input': settings.input,
        'opt': settings.opt,
        'arch': settings.arch,
        'arch_opt': settings.arch_opt,
        'weights': osp.abspath(weights),
        'param_key': settings.param_key,
        'tile': settings.tile,
        'tile_pad': settings.tile_pad,
        'fp16': settings.fp16,
    }
    if settings.colour_sigma:  # recorded only when set, so folders written before the option still resume
        job_settings['colour_sigma'] = settings.colour_sigma
    hashed = {'weights': weights, **({'opt': settings.opt} if settings.opt else {})}
    return run_job(
        FolderJob(command='sr', out_dir=settings.out, input_dirs=inputs, settings=job_settings, items=items,
                  process=process, weights=hashed),
        overwrite=settings.overwrite,
        progress=settings.progress)
