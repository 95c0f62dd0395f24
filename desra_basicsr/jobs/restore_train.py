"""Restorer training job: train the DiffGAR restorer (:mod:`desra_basicsr.restore`) from an option file.

The option file (``options/restore/demo.yml``, ``options/restore/diffgar.yml``; docs/restore.md) has four
sections. ``data`` lists the artifact zoo's samples (:mod:`desra_basicsr.jobs.zoo_samples`): ``synthetic`` folders of
``desra zoo synth`` and ``generators`` (``output``, ``masks``, ``hr``, ``class`` each); relative paths are taken
from the current folder, as BasicSR's ``dataroot`` keys. ``model`` holds the U-Net (``block_out_channels``,
``layers_per_block``, ``attention``) and ``autoencoder`` (a diffusers ``AutoencoderKL`` folder for latent space;
absent: pixel space), ``diffusion`` holds ``train_timesteps``, ``beta_schedule``, ``mask_probability``,
``prediction`` (``epsilon``, ``v_prediction``, ``sample``) and ``residual`` (diffuse ``clean - artifact``), and
``train`` the schedule (``iters``, ``batch_size``, ``crop_size``, ``lr``, ``weight_decay``, ``ema_decay``,
``checkpoint_every``, ``seed``, ``num_workers``, ``mixed_precision``). An unknown key is refused (a typo would
otherwise train with a default).

One job item, ``restorer``, whose inputs are every training image and target and whose output is
``OUT/restorer.pth``, so the job core (:mod:`desra_basicsr.jobs.core`) keeps a finished run, refuses other options or
changed inputs unless ``overwrite`` (which also discards the resumable checkpoints, once the core has found the
folder to be this command's), and records the options, the training time and the final loss in
``OUT/summary.json``. An interrupted run resumes from its latest checkpoint (``OUT/checkpoints``). Under
``python -m torch.distributed.run`` the item is collective: every rank trains (DistributedDataParallel, nccl on one
GPU per rank or gloo on CPU processes) and rank 0 writes the files.

Example::

    from desra_basicsr.jobs.restore_train import RestoreTrainSettings, run
    result = run(RestoreTrainSettings(options='options/restore/demo.yml', out='runs/restorer'))
    print(result.items['restorer']['checkpoint'])
"""
import os.path as osp
import typing
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple

from desra_basicsr.errors import DesraSettingsError, settings_phase
from desra_basicsr.folders import check_out_dir
from desra_basicsr.jobs.core import (FolderJob, JobItem, JobResult, discard_training_state, dist_info, local_rank,
                                     run_job, under_torchrun)
from desra_basicsr.settings import Settings, normalise_path, optional_type, setting

#: The job's command, as ``summary.json`` records it and messages name it (``desra restore train``).
COMMAND = 'restore train'
#: Name of the job's single item in ``summary.json``.
ITEM = 'restorer'
#: The keys of each section of an option file, and the :class:`~desra_basicsr.restore.training.TrainOptions` field
#: each one sets.
SECTIONS = {
    'model': ('block_out_channels', 'layers_per_block', 'attention', 'autoencoder', 'objective'),
    'diffusion': ('train_timesteps', 'beta_schedule', 'mask_probability', 'prediction', 'residual'),
    'train': ('iters', 'batch_size', 'crop_size', 'lr', 'weight_decay', 'ema_decay', 'checkpoint_every', 'seed',
              'num_workers', 'mixed_precision'),
}
GENERATOR_KEYS = ('output', 'masks', 'hr', 'class')


@dataclass(frozen=True)
class RestoreTrainSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        options (str): The option file (YAML; see the module docstring).
        out (str): Output folder.
        device (str): ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun each rank takes its local GPU).
        overwrite (bool): Train again from scratch even when ``out`` holds a run with other options.
        progress (bool): Show a progress bar.
    """
    options: str = setting(kind='path')
    out: str = setting(kind='path')
    device: str = setting('auto', kind='device')
    overwrite: bool = False
    progress: bool = True


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DesraSettingsError(f'{where}: must be a mapping of keys to values')
    return value


def _yaml_number(value: Any, annotation: Any) -> Any:
    """An option file's string for a ``float`` field as the number: YAML reads ``1e-4`` (no dot) as a string.

    Every value's type is then checked by :class:`~desra_basicsr.restore.training.TrainOptions` (its
    :class:`~desra_basicsr.settings.Settings` checks), so another string is refused there, naming its key.

    Args:
        value: The value read.
        annotation: The field's type.

    Returns:
        The float for a string that parses as one in a ``float`` field; else ``value`` as it is.
    """
    if optional_type(annotation)[0] is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _zoo_pairs(data: Mapping[str, Any], path: str) -> Tuple[List[Tuple[str, str, str]], Dict[str, str]]:
    """The ``(image, target, class)`` pairs of the ``data`` section, and its folders by role."""
    from desra_basicsr.jobs.zoo_samples import generator_samples, synthetic_samples
    unknown = sorted(set(data) - {'synthetic', 'generators'})
    if unknown:
        raise DesraSettingsError(f'{path}: data.{unknown[0]}: unknown key; use synthetic and generators')
    samples, folders = [], {}
    synthetic = data.get('synthetic') or []
    for i, root in enumerate([synthetic] if isinstance(synthetic, str) else synthetic):
        folders[f'synthetic{i}'] = normalise_path(str(root))
        samples += synthetic_samples(folders[f'synthetic{i}'])
    for i, gen in enumerate(data.get('generators') or []):
        gen = _mapping(gen, f'{path}: data.generators[{i}]')
        if sorted(gen) != sorted(GENERATOR_KEYS):
            raise DesraSettingsError(f'{path}: data.generators[{i}]: give exactly {", ".join(GENERATOR_KEYS)}')
        roles = {f'generator{i}_{key}': normalise_path(str(gen[key])) for key in GENERATOR_KEYS[:3]}
        folders.update(roles)
        samples += generator_samples(*roles.values(), str(gen['class']))
    if not samples:
        raise DesraSettingsError(f'{path}: data: no training sample; list desra zoo synth folders under synthetic '
                                 'or generator folders under generators')
    return [(s.image, s.target, s.cls) for s in samples], folders


def read_options(path: str):
    """Read and check a restorer option file.

    Args:
        path (str): The YAML file.

    Returns:
        tuple: ``(TrainOptions, folders)``: the checked options and the training data's folders by role.

    Raises:
        DesraSettingsError: If the file is missing or malformed, a key is unknown, a value is of the wrong type or
            refused, or the data holds no sample.
    """
    import yaml

    from desra_basicsr.restore.training import TrainOptions
    if not osp.isfile(path):
        raise DesraSettingsError(f'--options {path}: no such file')
    try:
        with open(path, 'r', encoding='utf-8') as f:
            opt = _mapping(yaml.safe_load(f), path)
    except (OSError, yaml.YAMLError) as err:
        raise DesraSettingsError(f'--options {path}: not a readable YAML file ({str(err).splitlines()[0]})') from err
    unknown = sorted(set(opt) - {'name', 'data', *SECTIONS})
    if unknown:
        raise DesraSettingsError(f'{path}: {unknown[0]}: unknown key; use name, data, {", ".join(SECTIONS)}')
    fields: Dict[str, Any] = {'name': str(opt.get('name') or osp.splitext(osp.basename(path))[0])}
    hints = typing.get_type_hints(TrainOptions)
    for section, keys in SECTIONS.items():
        values = _mapping(opt.get(section), f'{path}: {section}')
        for key in sorted(set(values) - set(keys)):
            raise DesraSettingsError(f'{path}: {section}.{key}: unknown key; use {", ".join(keys)}')
        fields.update({key: _yaml_number(value, hints[key]) for key, value in values.items()})
    if 'block_out_channels' in fields:
        channels = fields['block_out_channels']
        if not isinstance(channels, list) or not channels or not all(
                isinstance(c, int) and 8 <= c <= 4096 and c % 8 == 0 for c in channels):
            raise DesraSettingsError(f'{path}: model.block_out_channels {channels}: give a list of multiples of 8 '
                                     'in [8, 4096]')
        fields['block_out_channels'] = tuple(channels)
    with settings_phase():
        pairs, folders = _zoo_pairs(_mapping(opt.get('data'), f'{path}: data'), path)
    try:
        options = TrainOptions(pairs=tuple(pairs), **fields)
    except (DesraSettingsError, TypeError) as err:
        raise DesraSettingsError(f'{path}: {err}') from err
    levels = len(options.block_out_channels)
    if options.crop_size % 2**(levels - 1):
        raise DesraSettingsError(f'{path}: train.crop_size {options.crop_size}: must be a multiple of '
                                 f'{2**(levels - 1)} (the U-Net halves it {levels - 1} times)')
    return options, folders


def run(settings: RestoreTrainSettings) -> JobResult:
    """Train the restorer (see the module docstring).

    Args:
        settings (RestoreTrainSettings): The option file and output folder.

    Returns:
        JobResult: ``items['restorer']`` holds ``checkpoint``, ``classes``, ``samples``, ``iters``, ``seconds``,
        ``resumed_from``, ``final_loss``, ``space`` and ``objective``.

    Raises:
        DesraSettingsError: An unusable option file, training data, autoencoder or output folder, before training.
    """
    from desra_basicsr.devices import resolve_device
    from desra_basicsr.jobs.localizer_train import training_process_group  # nccl on GPUs, gloo on CPUs
    from desra_basicsr.restore.model import Restorer
    from desra_basicsr.restore.training import CHECKPOINT_DIR, RESTORER_NAME, train_restorer

    options, folders = read_options(settings.options)
    check_out_dir(settings.out, folders)
    if options.autoencoder:
        with settings_phase():
            Restorer(options.config())  # an unusable autoencoder folder is refused before the job starts
    distributed = under_torchrun()
    rank, world_size = dist_info()
    device = resolve_device(settings.device, local_rank())

    def process(item: JobItem) -> dict:
        if settings.overwrite:
            discard_training_state(osp.join(settings.out, CHECKPOINT_DIR))
        return train_restorer(options, settings.out, device, rank, world_size, settings.progress)

    recorded = {k: v for k, v in vars(options).items() if k != 'pairs'}
    inputs = tuple(sorted({path for image, target, _ in options.pairs for path in (image, target)}))
    with training_process_group(distributed):
        return run_job(
            FolderJob(
                command=COMMAND,
                out_dir=settings.out,
                input_dirs=folders,
                settings=dict(recorded, block_out_channels=list(options.block_out_channels),
                              samples=[list(p) for p in options.pairs]),
                items=[JobItem(ITEM, inputs, (osp.join(settings.out, RESTORER_NAME), ))],
                process=process,
                desc='restore train',
                collective=True),
            overwrite=settings.overwrite,
            progress=False)
