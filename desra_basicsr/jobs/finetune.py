"""The DeSRA fine-tune (paper section 3.3) as a job of the Python API: option template + data folders -> checkpoints.

:func:`run` turns a BasicSR option template (``options/finetune_{realesrgan,ldl,swinir}_desra.yml``,
``options/demo_finetune_desra.yml`` or the user's own) into the options of one run, then trains with
``desra_basicsr/train.py``'s checked pipeline. Everything lands in one output folder ``OUT``:

* ``OUT/options/finetune_desra.yml``: the derived option file (written atomically): the template with this run's
  training data (``datasets.train.dataroot_{lq,mse,gan,mask}``, :class:`~desra_basicsr.data.pseudo_gt_paired_dataset.
  PseudoGTPairedDataset`), optional validation data (``datasets.val``; without it the template's validation is
  dropped), start weights (``path.pretrain_network_g`` / ``_d``; without a discriminator, D starts from scratch and
  the template's ``train.net_d_init_iters`` warm-up applies), experiment name, iterations, checkpoint interval
  (``logger.save_checkpoint_freq``), seed, device (``num_gpu``; ``dist_params.backend`` gloo on CPU, nccl on CUDA
  for several processes) and the recipe overrides (``options``: dotted keys such as ``train.optim_g.lr``);
* ``OUT/experiments/<name>/``: BasicSR's run folder (``models/net_g_<iter>.pth``, ``net_g_latest.pth``,
  ``training_states/``), never under the caller's working folder;
* ``OUT/finetune.log``: the training log (appended by every resumed run).

One process trains in-process (repeatable in one Python process: BasicSR's logger is set up afresh for every run);
``nproc > 1`` runs ``python -m torch.distributed.run --standalone --nproc_per_node=N desra_basicsr/train.py``
with its working folder ``OUT``. An interrupted run resumes from its last training state (``--auto_resume``); a
finished one is not trained again; a folder holding a run with other options is refused.

Example::

    from desra_basicsr.jobs.finetune import FinetuneSettings, run
    result = run(FinetuneSettings(
        template='options/finetune_realesrgan_desra.yml', out='runs/ft', dataroot_lq='lr', dataroot_mse='sr/mse',
        dataroot_gan='sr/gan', dataroot_mask='masks', generator='RealESRGAN_x4plus.pth',
        discriminator='RealESRGAN_x4plus_netD.pth', iters=1000, checkpoint_every=100,
        options=(('train.optim_g.lr', 1e-5), )))
    print(result.checkpoints[1000], result.log)
"""
import copy
import logging
import os
import os.path as osp
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import yaml

from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.settings import Settings, setting
from desra_basicsr.utils import atomic_write_path, option_differences

#: Most fine-tune iterations of a run.
MAX_ITERS = 100_000
#: Largest ``manual_seed``.
MAX_SEED = 2**32 - 1
#: Most training processes.
MAX_NPROC = 64
#: The derived option file and the training log, relative to the output folder.
OPTIONS_NAME = osp.join('options', 'finetune_desra.yml')
LOG_NAME = 'finetune.log'
#: Where BasicSR's perceptual loss loads VGG19 from, relative to the working folder (``basicsr.archs.vgg_arch``).
VGG_RELATIVE = osp.join('experiments', 'pretrained_models', 'vgg19-dcbb9e9d.pth')
#: ``desra_basicsr/train.py``, run as a script under torchrun.
TRAIN_SCRIPT = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'train.py')
#: BasicSR log messages shown as progress (the rest goes to the log only).
PROGRESS_MARKERS = ('[epoch:', 'Saving models', 'Resuming training', 'End of training')
#: The training-data fields and their ``datasets.train`` keys (the keys of ``PseudoGTPairedDataset``).
DATAROOTS = ('dataroot_lq', 'dataroot_mse', 'dataroot_gan', 'dataroot_mask')
#: Option keys set by a field of :class:`FinetuneSettings`; ``options`` may not override them.
OWNED_KEYS = {
    'name': 'name',
    'manual_seed': 'seed',
    'num_gpu': 'device',
    'train.total_iter': 'iters',
    'logger.save_checkpoint_freq': 'checkpoint_every',
    'path.pretrain_network_g': 'generator',
    'path.pretrain_network_d': 'discriminator',
    **{f'datasets.train.{key}': key for key in DATAROOTS},
    **{f'datasets.val.{key}': f'val_{key}' for key in DATAROOTS},
}


def _freeze(value: Any, key: str) -> Any:
    """An override value as a hashable YAML value: scalars, lists (as tuples) of scalars."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v, key) for v in value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise DesraSettingsError(f'options {key}: {value!r} is not a number, string, boolean, null or list of them; '
                             'set each key of a block separately')


def _thaw(value: Any) -> Any:
    """The YAML form of a frozen override value (tuples back to lists)."""
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class FinetuneSettings(Settings):
    """Settings of :func:`run` (paths made absolute).

    Attributes:
        template (str): BasicSR option template of the fine-tune (the recipe).
        out (str): Output folder (derived options, ``experiments/``, log).
        dataroot_lq (str): Training LR images.
        dataroot_mse (str): MSE-SR outputs of the training LR images.
        dataroot_gan (str): GAN-SR outputs of the training LR images.
        dataroot_mask (str): DeSRA-det masks of the GAN-SR outputs.
        generator (str): Start weights of the generator (the GAN-SR model): ``path.pretrain_network_g``.
        discriminator (str | None): Start weights of the discriminator; None: trained from scratch, after the
            template's ``train.net_d_init_iters`` warm-up.
        val_dataroot_lq (str | None): Validation LR images (BasicSR's validation during training); with the three
            other ``val_*`` folders, or none of them.
        val_dataroot_mse (str | None): MSE-SR outputs of the validation images.
        val_dataroot_gan (str | None): GAN-SR outputs of the validation images.
        val_dataroot_mask (str | None): Masks of the validation images.
        name (str | None): Experiment name (``experiments/<name>/``); None: the template's.
        iters (int | None): Training iterations (``train.total_iter``); None: the template's.
        checkpoint_every (int | None): Save the generator every this many iterations (``save_checkpoint_freq``);
            None: the template's.
        seed (int | None): ``manual_seed``; None: the template's.
        device (str): ``cpu`` (``num_gpu: 0``), ``cuda``, ``cuda:N`` (one process only) or ``auto``.
        nproc (int): Training processes; more than 1 trains under torchrun (gloo on CPU, nccl on CUDA).
        options (tuple): Recipe overrides as ``(dotted key, value)`` pairs, e.g. ``(('train.optim_g.lr', 1e-5),
            ('datasets.train.use_hflip', False))``; a mapping is accepted and stored as pairs. The parent block of
            each key must exist in the template.
        vgg19 (str | None): VGG19 weights of a perceptual loss (linked into ``OUT``); None: the file at
            ``experiments/pretrained_models/vgg19-dcbb9e9d.pth`` under the working folder, where BasicSR looks.
        progress (bool): Print the training progress lines.
    """
    template: str = setting(kind='path')
    out: str = setting(kind='path')
    dataroot_lq: str = setting(kind='path')
    dataroot_mse: str = setting(kind='path')
    dataroot_gan: str = setting(kind='path')
    dataroot_mask: str = setting(kind='path')
    generator: str = setting(kind='path')
    discriminator: Optional[str] = setting(None, kind='path')
    val_dataroot_lq: Optional[str] = setting(None, kind='path')
    val_dataroot_mse: Optional[str] = setting(None, kind='path')
    val_dataroot_gan: Optional[str] = setting(None, kind='path')
    val_dataroot_mask: Optional[str] = setting(None, kind='path')
    name: Optional[str] = None
    iters: Optional[int] = setting(None, lo=1, hi=MAX_ITERS)
    checkpoint_every: Optional[int] = setting(None, lo=1, hi=MAX_ITERS)
    seed: Optional[int] = setting(None, lo=0, hi=MAX_SEED)
    device: str = setting('cpu', kind='device')
    nproc: int = setting(1, lo=1, hi=MAX_NPROC)
    options: Tuple[Tuple[str, Any], ...] = ()
    vgg19: Optional[str] = setting(None, kind='path')
    progress: bool = True

    def check(self) -> None:
        """Validation folders all or none; a usable experiment name; one GPU per process; well-formed overrides."""
        given = [getattr(self, f'val_{key}') is not None for key in DATAROOTS]
        if any(given) and not all(given):
            raise DesraSettingsError('--val-dataroot-lq/-mse/-gan/-mask: give all four validation folders or none')
        if self.name is not None and (not self.name.strip() or osp.basename(self.name) != self.name
                                      or self.name in ('.', '..')):
            raise DesraSettingsError(f'--name {self.name!r}: give a plain folder name for experiments/<name>')
        if self.nproc > 1 and ':' in self.device:
            raise DesraSettingsError(f'--device {self.device} with --nproc {self.nproc}: use cuda (each process '
                                     'takes its own GPU) or set CUDA_VISIBLE_DEVICES')
        object.__setattr__(self, 'options', self._checked_options())

    def _checked_options(self) -> Tuple[Tuple[str, Any], ...]:
        """The overrides as ``(key, frozen value)`` pairs; refuses malformed keys and keys a field owns."""
        pairs = self.options.items() if isinstance(self.options, Mapping) else self.options
        checked = []
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise DesraSettingsError(f'options {pair!r}: give (dotted key, value) pairs')
            key, value = pair
            if not isinstance(key, str) or not all(part.strip() for part in key.split('.')):
                raise DesraSettingsError(f'options {key!r}: give a dotted option key such as train.optim_g.lr')
            if key in OWNED_KEYS:
                raise DesraSettingsError(f'options {key}: set by the {OWNED_KEYS[key]} setting; use it instead')
            checked.append((key, _freeze(value, key)))
        return tuple(checked)

    def training_data(self) -> Dict[str, str]:
        """The training folders by ``datasets.train`` key."""
        return {key: getattr(self, key) for key in DATAROOTS}

    def validation_data(self) -> Optional[Dict[str, str]]:
        """The validation folders by ``datasets.val`` key, or None."""
        if self.val_dataroot_lq is None:
            return None
        return {key: getattr(self, f'val_{key}') for key in DATAROOTS}


@dataclass
class FinetuneResult:
    """What :func:`run` produced.

    Attributes:
        options (str): The derived option file.
        experiment (str): BasicSR's experiment folder (``OUT/experiments/<name>``).
        checkpoints (dict[int, str]): Generator weights by iteration: every ``net_g_<iter>.pth`` the run saved, and
            the final iteration (``net_g_latest.pth`` when no numbered file holds it).
        log (str): The training log.
        seconds (float): Wall time of this call (training skipped: the check only).
        trained (bool): Whether this call trained (False: the folder held the finished run).
    """
    options: str
    experiment: str
    checkpoints: Dict[int, str]
    log: str
    seconds: float
    trained: bool = True

    @property
    def latest(self) -> str:
        """The generator weights of the last iteration."""
        return self.checkpoints[max(self.checkpoints)]

    def describe(self) -> str:
        """One line for the terminal."""
        what = 'trained' if self.trained else 'kept from an earlier run'
        return (f'finetune: {what}, {len(self.checkpoints)} checkpoint(s) up to iteration {max(self.checkpoints)} '
                f'({self.latest}); log: {self.log}')


# ------------------------------------------------------------------------------------------------ derived options
def read_template(path: str) -> dict:
    """Read an option template (plain YAML, as the derived file is written) and check the blocks a run fills in.

    Args:
        path (str): The template.

    Returns:
        dict: The options.

    Raises:
        DesraSettingsError: If the file is missing, is not YAML, or lacks ``datasets.train``, ``path``, ``train`` or
            ``logger`` blocks.
    """
    if not osp.isfile(path):
        raise DesraSettingsError(f'{path}: option template not found; give a BasicSR option file such as '
                                 'options/finetune_realesrgan_desra.yml')
    try:
        with open(path, 'r') as f:
            opt = yaml.safe_load(f)
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        line = f' at line {mark.line + 1}' if mark is not None else ''
        raise DesraSettingsError(f'{path}: not a valid YAML file{line}; fix the syntax') from None
    if not isinstance(opt, dict):
        raise DesraSettingsError(f'{path}: the option template holds no mapping of options; see options/*.yml')
    for key in ('datasets.train', 'path', 'train', 'logger'):
        if not isinstance(_block(opt, key), dict):
            raise DesraSettingsError(f'{path}: no {key} block; start from options/finetune_*_desra.yml')
    return opt


def _block(opt: dict, key: str) -> Any:
    """The value at a dotted key, or None."""
    value: Any = opt
    for part in key.split('.'):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _set_validation(opt: dict, folders: Optional[Dict[str, str]], every: Any) -> None:
    """Point ``datasets.val`` at the validation folders, or drop the template's validation when there are none."""
    datasets = opt['datasets']
    if folders is None:
        for phase in [p for p in datasets if p.split('_')[0] == 'val']:
            del datasets[phase]
        opt.pop('val', None)
        return
    val_set = datasets.setdefault('val', {'name': 'DeSRA_val', 'type': 'PseudoGTPairedDataset'})
    val_set.update(folders)
    val_set.setdefault('io_backend', {'type': 'disk'})
    if not isinstance(opt.get('val'), dict):
        opt['val'] = {'val_freq': every, 'save_img': False,
                      'metrics': {'desra_artifact_ratio': {'type': 'desra_artifact_ratio', 'better': 'lower'}}}


def _override(opt: dict, key: str, value: Any, template: str) -> None:
    """Set one dotted key; its parent block must exist in the template."""
    parent, _, leaf = key.rpartition('.')
    block = _block(opt, parent) if parent else opt
    if not isinstance(block, dict):
        raise DesraSettingsError(f'options {key}: {template} has no {parent} block; check the key')
    block[leaf] = _thaw(value)


def derive_options(settings: FinetuneSettings, cuda: bool) -> dict:
    """The options of one run: the template with the settings filled in (see the module docstring).

    Args:
        settings (FinetuneSettings): The settings.
        cuda (bool): Whether the run trains on CUDA (``num_gpu`` and the distributed backend).

    Returns:
        dict: The derived options.

    Raises:
        DesraSettingsError: For an unusable template or an override whose block does not exist.
    """
    opt = read_template(settings.template)
    opt['datasets']['train'].update(settings.training_data())
    opt['path'].update(pretrain_network_g=settings.generator, pretrain_network_d=settings.discriminator)
    if settings.name is not None:
        opt['name'] = settings.name
    if settings.iters is not None:
        opt['train']['total_iter'] = settings.iters
    if settings.checkpoint_every is not None:
        opt['logger']['save_checkpoint_freq'] = settings.checkpoint_every
    if settings.seed is not None:
        opt['manual_seed'] = settings.seed
    opt['num_gpu'] = (settings.nproc if cuda else 0)
    if settings.nproc > 1:
        opt.setdefault('dist_params', {})['backend'] = 'nccl' if cuda else 'gloo'
    _set_validation(opt, settings.validation_data(), opt['logger'].get('save_checkpoint_freq'))
    for key, value in settings.options:
        _override(opt, key, value, settings.template)
    if not isinstance(opt.get('name'), str) or not opt['name'] or osp.basename(opt['name']) != opt['name']:
        raise DesraSettingsError(f'{settings.template}: name {opt.get("name")!r} is not a plain folder name; '
                                 'set name in the template or give one')
    return opt


def write_options(opt: dict, path: str, template: str) -> None:
    """Write derived options atomically, with a header naming the template.

    Args:
        opt (dict): The options.
        path (str): The option file.
        template (str): The template they were derived from.
    """
    with atomic_write_path(path) as tmp:
        with open(tmp, 'w') as f:
            f.write(f'# written by desra_basicsr.jobs.finetune from {template}\n')
            yaml.safe_dump(opt, f, sort_keys=False)


# ------------------------------------------------------------------------------------------------------- checks
def _check_inputs(settings: FinetuneSettings, opt: dict) -> None:
    """Refuse missing data folders, weights or VGG19 file, and an unusable output folder, before any training."""
    from desra_basicsr.folders import check_out_dir, require_folder

    folders = {**settings.training_data(), **{f'val-{k}': v for k, v in (settings.validation_data() or {}).items()}}
    check_out_dir(settings.out, {key.replace('_', '-'): folder for key, folder in folders.items()})
    for key, folder in folders.items():
        require_folder(folder, key.replace('_', '-'))
    for flag, path in (('--generator', settings.generator), ('--discriminator', settings.discriminator)):
        if path is not None and not osp.isfile(path):
            raise DesraSettingsError(f'{path}: {flag} weights file not found')
    if (opt['train'].get('perceptual_opt')) and not osp.isfile(vgg19_file(settings)):
        raise DesraSettingsError(f'{vgg19_file(settings)}: VGG19 weights for the perceptual loss '
                                 '(train.perceptual_opt) not found; give --vgg19 (torchvision\'s vgg19-dcbb9e9d.pth)')


def vgg19_file(settings: FinetuneSettings) -> str:
    """The VGG19 weights a perceptual loss loads (``settings.vgg19`` or the working folder's file).

    Args:
        settings (FinetuneSettings): The settings.

    Returns:
        str: Absolute path.
    """
    return settings.vgg19 or osp.abspath(VGG_RELATIVE)


def _link_vgg19(settings: FinetuneSettings) -> None:
    """Make the VGG19 file visible where BasicSR looks under the output folder (a symbolic link)."""
    target = osp.join(settings.out, VGG_RELATIVE)
    source = vgg19_file(settings)
    if osp.realpath(target) == osp.realpath(source):
        return
    os.makedirs(osp.dirname(target), exist_ok=True)
    if osp.lexists(target):
        os.remove(target)
    os.symlink(source, target)


@contextmanager
def _working_folder(folder: str) -> Iterator[None]:
    """Run the block in ``folder`` (BasicSR resolves ``experiments/`` and the VGG19 file against it)."""
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def check_parsed_options(opt: dict, opt_path: str, out: str) -> None:
    """``desra_basicsr/train.py``'s checks of the derived options, before any process starts.

    Args:
        opt (dict): The derived options.
        opt_path (str): Their file, named in messages.
        out (str): The output folder (the working folder of the run).

    Raises:
        DesraSettingsError: For an unregistered type, an unknown key that would stop the run, a missing file.
    """
    from desra_basicsr.train import check_files, check_types, unknown_keys

    parsed = copy.deepcopy(opt)
    parsed.update(is_train=True, auto_resume=True)
    for phase, block in parsed['datasets'].items():
        if isinstance(block, dict):
            block.update(phase=phase.split('_')[0], scale=parsed.get('scale', 1))
    check_types(parsed, opt_path)
    errors, _ = unknown_keys(parsed)
    if errors:
        raise DesraSettingsError(f'{opt_path}: {errors[0]}')
    with _working_folder(out):
        check_files(parsed)


def _claim(settings: FinetuneSettings, opt: dict) -> Tuple[str, str]:
    """Write the derived option file; refuse a folder whose run was started with other options.

    Returns:
        tuple[str, str]: The option file and the experiment folder.
    """
    path = osp.join(settings.out, OPTIONS_NAME)
    if osp.isfile(path):
        try:
            with open(path, 'r') as f:
                old = yaml.safe_load(f)
        except yaml.YAMLError:
            old = None
        old_name = old.get('name') if isinstance(old, dict) else None
        if isinstance(old_name, str) and osp.isdir(osp.join(settings.out, 'experiments', old_name)):
            changed = list(option_differences(old, opt))
            if changed:
                raise DesraSettingsError(
                    f'{settings.out}: holds a fine-tune with other options ({", ".join(changed[:5])}); delete '
                    f'{osp.join(settings.out, "experiments", old_name)} or choose another out folder')
    write_options(opt, path, settings.template)
    return path, osp.join(settings.out, 'experiments', opt['name'])


def saved_checkpoints(experiment: str, total_iter: int) -> Dict[int, str]:
    """The generator weights a run saved, by iteration (see :attr:`FinetuneResult.checkpoints`).

    Args:
        experiment (str): BasicSR's experiment folder.
        total_iter (int): The run's last iteration.

    Returns:
        dict[int, str]: Sorted by iteration.
    """
    models = osp.join(experiment, 'models')
    found = {}
    for name in (os.listdir(models) if osp.isdir(models) else []):
        match = re.fullmatch(r'net_g_(\d+)\.pth', name)
        if match and int(match.group(1)) <= total_iter:
            found[int(match.group(1))] = osp.join(models, name)
    latest = osp.join(models, 'net_g_latest.pth')
    if osp.isfile(latest) and total_iter not in found:
        found[total_iter] = latest
    return dict(sorted(found.items()))


# ----------------------------------------------------------------------------------------------------- training
class _ProgressFilter(logging.Filter):
    """Lets through BasicSR's progress messages (:data:`PROGRESS_MARKERS`) and warnings."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003 (logging's API)
        return record.levelno >= logging.WARNING or any(m in record.getMessage() for m in PROGRESS_MARKERS)


@contextmanager
def basicsr_logger(log_path: str, progress: bool) -> Iterator[None]:
    """BasicSR's ``basicsr`` logger set up afresh for one in-process run, and restored afterwards.

    BasicSR configures its logger once per process (``get_root_logger``); a second training in the same process
    would write into the first run's log, and any earlier ``get_root_logger()`` call (a dataset warning) leaves it
    without a file. Here the logger writes to ``log_path`` (appended) and shows the progress messages on stdout.

    Args:
        log_path (str): The training log.
        progress (bool): Show the progress messages.

    Yields:
        None
    """
    from basicsr.utils import logger as basicsr_logging

    logger = logging.getLogger('basicsr')
    saved = (logger.handlers[:], logger.level, logger.propagate, basicsr_logging.initialized_logger.get('basicsr'))
    for handler in saved[0]:
        logger.removeHandler(handler)
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    file_handler = logging.FileHandler(log_path, 'a')
    file_handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s: %(message)s'))
    handlers: List[logging.Handler] = [file_handler]
    if progress:
        stream = logging.StreamHandler(sys.stdout)
        stream.setFormatter(logging.Formatter('  %(message)s'))
        stream.addFilter(_ProgressFilter())
        handlers.append(stream)
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    basicsr_logging.initialized_logger['basicsr'] = True
    try:
        yield
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            logger.addHandler(handler)
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
        if saved[3] is None:
            basicsr_logging.initialized_logger.pop('basicsr', None)


@contextmanager
def _cuda_device(device: str) -> Iterator[None]:
    """Make ``cuda:N`` the current CUDA device for the block (BasicSR trains on the current one)."""
    import torch
    if not device.startswith('cuda:'):
        yield
        return
    previous = torch.cuda.current_device()
    torch.cuda.set_device(int(device.split(':', 1)[1]))
    try:
        yield
    finally:
        torch.cuda.set_device(previous)


def _train_in_process(opt_path: str, out: str, log_path: str, device: str, progress: bool) -> None:
    """BasicSR's training pipeline with ``desra_basicsr/train.py``'s checks, in this process, rooted at ``out``."""
    from desra_basicsr.train import train_checked

    with basicsr_logger(log_path, progress), _cuda_device(device), _working_folder(out):
        try:
            train_checked(out, ['-opt', opt_path, '--auto_resume'])
        except DesraInputError as err:
            raise type(err)(f'{err} (log: {log_path})') from err


def _train_torchrun(opt_path: str, out: str, log_path: str, nproc: int, progress: bool) -> None:
    """``desra_basicsr/train.py`` under torchrun in ``out``; its output goes to the log, progress lines are shown."""
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}', TRAIN_SCRIPT,
           '-opt', opt_path, '--launcher', 'pytorch', '--auto_resume']
    root = osp.dirname(osp.dirname(TRAIN_SCRIPT))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get('PYTHONPATH')])))
    if progress:
        print(f'fine-tune: (cd {out} && {" ".join(cmd[2:])})  # log: {log_path}', flush=True)
    tail: List[str] = []
    with open(log_path, 'a') as log:
        proc = subprocess.Popen(cmd, cwd=out, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for line in proc.stdout:
                log.write(line)
                tail = (tail + [line])[-25:]
                if progress and any(m in line for m in PROGRESS_MARKERS):
                    print('  ' + line.split('INFO: ')[-1].rstrip(), flush=True)
            code = proc.wait()
        except BaseException:
            proc.terminate()
            proc.wait()
            raise
    if code != 0:
        errors = [line.strip()[len('error: '):] for line in tail if line.strip().startswith('error: ')]
        reason = errors[-1] if errors else f'exit code {code}'
        if code == 2 and errors:
            raise DesraSettingsError(f'{reason} (log: {log_path})')
        raise DesraInputError(f'fine-tuning failed: {reason} (log: {log_path})')


def run(settings: FinetuneSettings) -> FinetuneResult:
    """Fine-tune: write the derived options, train (resuming an interrupted run), return the checkpoints.

    Args:
        settings (FinetuneSettings): Template, data, start weights, length, device and recipe overrides.

    Returns:
        FinetuneResult: The option file, experiment folder, checkpoints by iteration, log and seconds.

    Raises:
        DesraSettingsError: For unusable settings (template, folders, weights, options, device, an output folder
            holding a run with other options), before any training.
        DesraInputError: When training fails (the message names the log).
    """
    from desra_basicsr.devices import resolve_device

    start = time.time()
    device = resolve_device(settings.device)
    if device.type == 'cuda' and settings.nproc > 1:
        import torch
        if torch.cuda.device_count() < settings.nproc:
            raise DesraSettingsError(f'--nproc {settings.nproc}: only {torch.cuda.device_count()} GPU(s) visible')
    opt = derive_options(settings, cuda=device.type == 'cuda')
    _check_inputs(settings, opt)
    opt_path, experiment = _claim(settings, opt)
    if opt['train'].get('perceptual_opt'):
        _link_vgg19(settings)
    check_parsed_options(opt, opt_path, settings.out)
    log_path = osp.join(settings.out, LOG_NAME)
    total = int(opt['train']['total_iter'])
    finished = osp.isfile(osp.join(experiment, 'models', 'net_g_latest.pth'))
    if not finished:
        if settings.nproc > 1:
            _train_torchrun(opt_path, settings.out, log_path, settings.nproc, settings.progress)
        else:
            _train_in_process(opt_path, settings.out, log_path, str(device), settings.progress)
    checkpoints = saved_checkpoints(experiment, total)
    if total not in checkpoints:
        raise DesraInputError(f'{experiment}: training ended without the weights of iteration {total} (log: '
                              f'{log_path})')
    return FinetuneResult(options=opt_path, experiment=experiment, checkpoints=checkpoints, log=log_path,
                          seconds=round(time.time() - start, 1), trained=not finished)
