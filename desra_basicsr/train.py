"""Training entry point: BasicSR's ``train_pipeline`` with the plugin's components registered.

Usage (from the repository root, as with Real-ESRGAN's ``realesrgan/train.py``)::

    python desra_basicsr/train.py -opt options/finetune_realesrgan_desra.yml [--auto_resume]
    python -m torch.distributed.run --nproc_per_node=4 desra_basicsr/train.py \\
        -opt options/finetune_realesrgan_desra.yml --launcher pytorch [--auto_resume]

Any BasicSR option file works, ours or the user's own. Runs are written to ``experiments/<name>/`` under the
current working directory, the same place ``--auto_resume`` looks for training states.

Before BasicSR parses the options, the keys it (and its training loop) cannot do without are checked, a DiffGAR
restorer option file is recognised, and a resumed run (``--auto_resume`` or ``path.resume_state``) must have been
started with the same training options: the option file is compared with the copy BasicSR saved in the run's
experiment folder (see :func:`check_resume_options`). ``--force_yml`` entries apply to all of these checks, and to the
option file's ``dist_params.backend``.

Before BasicSR creates the experiment folder, the options it parsed are checked: every type must be registered
(``model_type``, ``network_*``, datasets, the plugin's transform, losses, metrics), the keys of every ``network_*``
block must be arguments of its architecture, and the files and folders the
options name must exist (pretrained networks, ``resume_state``, VGG19 for a perceptual loss, data roots,
``meta_info_file``), plus the model's own checks. Each unknown key in a block the plugin owns (its dataset,
transform and metrics, ``DeSRAFinetuneModel``'s ``train`` block) gets one ``warning:`` line, since BasicSR ignores
it; ``persistent_workers`` is dropped, with a notice, from loaders that run no worker process (torch refuses it).

A user error ends the run with one line on stderr, ``error: <file or option>: <problem>; <what to do>``, naming
BasicSR's ``train_*.log`` when it was created (it is kept), and exit code 2 (an unusable option file, missing
inputs) or 1 (an input that failed during training). Any other exception keeps its traceback: that is a bug.
"""
import difflib
import inspect
import logging
import os
import os.path as osp
import pickle
import sys
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Tuple

import yaml

import desra_basicsr  # noqa: F401  (applies the compat fixes and registers the plugin's components)
from basicsr import train as basicsr_train
from basicsr.models.srgan_model import SRGANModel
from basicsr.utils.options import _postprocess_yml_value, ordered_yaml, parse_options
from basicsr.utils.registry import (ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY,
                                    Registry)
from desra_basicsr.checkpoints import load_error_reason
from desra_basicsr.compat import DIST_BACKEND_ENV, resume_state_file
from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.models.desra_finetune_model import VGG_PRETRAIN_PATH, check_pretrained_files, check_vgg_file
from desra_basicsr.registry import TRANSFORM_REGISTRY
from desra_basicsr.utils import notice, option_differences

#: Exit codes: an unusable option file or missing inputs; an input that failed during training.
EXIT_SETTINGS, EXIT_INPUT = 2, 1

#: Keys of every metric block besides the metric's own arguments, and the arguments BasicSR fills with images.
METRIC_COMMON_KEYS = frozenset({'type', 'better'})
METRIC_IMAGE_KEYS = frozenset({'img', 'img2', 'img_mse'})


def _option_value(argv: List[str], flag: str) -> Optional[str]:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + '='):
            return arg.split('=', 1)[1]
    return None


def read_option_file(path: str) -> dict:
    """Read a BasicSR option file as BasicSR does (its ordered YAML loader).

    Args:
        path (str): The ``-opt`` file.

    Returns:
        dict: The options.

    Raises:
        DesraSettingsError: If the file is missing, is not valid YAML, or does not hold a mapping.
    """
    if not osp.isfile(path):
        raise DesraSettingsError(f'{path}: option file not found (-opt); check the path')
    with open(path, 'r') as f:
        try:
            opt = yaml.load(f, Loader=ordered_yaml()[0])
        except yaml.YAMLError as err:
            where = getattr(err, 'problem_mark', None)
            line = f' at line {where.line + 1}' if where is not None else ''
            problem = getattr(err, 'problem', None) or str(err).splitlines()[0]
            raise DesraSettingsError(f'{path}: not a valid YAML file{line} ({problem}); fix the syntax') from None
    if not isinstance(opt, dict):
        raise DesraSettingsError(f'{path}: the option file holds no mapping of options; see options/*.yml')
    return opt


def force_yml_entries(argv: List[str]) -> List[str]:
    """The ``--force_yml`` entries of a command line, as BasicSR's parser collects them (``nargs='+'``).

    Args:
        argv (list[str]): Command-line arguments without the program name.

    Returns:
        list[str]: ``KEY:SUBKEY=VALUE`` entries, in order.
    """
    entries: List[str] = []
    taking = False
    for arg in argv:
        if arg.startswith('--force_yml='):
            entries.append(arg.split('=', 1)[1])
            taking = False
        elif arg == '--force_yml':
            taking = True
        elif taking and not arg.startswith('-'):
            entries.append(arg)
        else:
            taking = False
    return entries


def apply_force_yml(opt: dict, entries: List[str], opt_path: str) -> None:
    """Apply ``--force_yml`` entries to options as BasicSR's ``parse_options`` does (values parsed the same way).

    Args:
        opt (dict): Options read from ``opt_path``, changed in place.
        entries (list[str]): ``KEY:SUBKEY=VALUE`` entries.
        opt_path (str): The option file, named in errors.

    Raises:
        DesraSettingsError: For an entry without exactly one ``=``, or whose parent keys are not in the options
            (BasicSR creates no new blocks).
    """
    for entry in entries:
        if entry.count('=') != 1:
            raise DesraSettingsError(f'--force_yml {entry}: expected KEY:SUBKEY=VALUE, with one "="')
        keys, value = (part.strip() for part in entry.split('='))
        *parents, last = keys.split(':')
        node: Any = opt
        for depth, key in enumerate(parents):
            if not isinstance(node, dict) or key not in node:
                where = ':'.join(parents[:depth + 1])
                raise DesraSettingsError(f'--force_yml {entry}: {opt_path} has no option {where}; check the keys')
            node = node[key]
        if not isinstance(node, dict):
            raise DesraSettingsError(f'--force_yml {entry}: {":".join(parents)} in {opt_path} is not a block of '
                                     'options; check the keys')
        node[last] = _postprocess_yml_value(value)


def effective_options(argv: List[str]) -> Optional[dict]:
    """The options a command line gives BasicSR: the ``-opt`` file, ``--force_yml`` applied (None without ``-opt``).

    Args:
        argv (list[str]): Command-line arguments without the program name.

    Returns:
        dict | None: The options.

    Raises:
        DesraSettingsError: If the ``-opt`` file is missing or is not a YAML mapping, or a ``--force_yml`` entry
            does not apply.
    """
    opt_path = _option_value(argv, '-opt')
    if not opt_path:
        return None
    opt = read_option_file(opt_path)
    apply_force_yml(opt, force_yml_entries(argv), opt_path)
    return opt


def prepare_argv(argv: List[str]) -> List[str]:
    """Make the command line acceptable to BasicSR's parser and export the options' dist backend.

    * ``torch.distributed.launch`` on torch 2.x passes ``--local-rank``; BasicSR's parser only knows
      ``--local_rank``.
    * ``dist_params.backend`` of the options (the option file, ``--force_yml`` applied; BasicSR only honours it for
      slurm) is exported as ``$DESRA_DIST_BACKEND`` for the pytorch launcher; without it, nccl is used on GPUs and
      gloo on CPU.

    Args:
        argv (list[str]): Command-line arguments without the program name.

    Returns:
        list[str]: Arguments for BasicSR's parser.

    Raises:
        DesraSettingsError: If the ``-opt`` file is missing or is not a YAML mapping, or a ``--force_yml`` entry
            does not apply.
    """
    argv = [('--local_rank' + arg[len('--local-rank'):]) if arg.startswith('--local-rank') else arg for arg in argv]
    opt = effective_options(argv)
    if opt is not None:
        dist_params = opt.get('dist_params')
        backend = dist_params.get('backend') if isinstance(dist_params, dict) else None
        if backend:
            os.environ.setdefault(DIST_BACKEND_ENV, backend)
    return argv


# ----------------------------------------------------------------------------------------------- option checks
def _blocks(opt: dict, key: str) -> Iterator[Tuple[str, dict]]:
    """``(name, block)`` of the mapping ``opt[key]`` whose values are option blocks (dicts)."""
    for name, block in (opt.get(key) or {}).items():
        if isinstance(block, dict):
            yield name, block


def _typed_blocks(opt: dict) -> Iterator[Tuple[str, Optional[str], Registry, str]]:
    """``(option, type name, registry, what it holds)`` of every type the options name."""
    yield 'model_type', opt.get('model_type'), MODEL_REGISTRY, 'model'
    for key, block in opt.items():
        if key.startswith('network_') and isinstance(block, dict):
            yield f'{key}.type', block.get('type'), ARCH_REGISTRY, 'network architecture'
    for phase, block in _blocks(opt, 'datasets'):
        yield f'datasets.{phase}.type', block.get('type'), DATASET_REGISTRY, 'dataset'
        if isinstance(block.get('transform'), dict) and 'type' in block['transform']:
            yield f'datasets.{phase}.transform.type', block['transform']['type'], TRANSFORM_REGISTRY, 'transform'
    for key, block in _blocks(opt, 'train'):
        if key.endswith('_opt'):
            yield f'train.{key}.type', block.get('type'), LOSS_REGISTRY, 'loss'
    for name, block in _blocks(opt.get('val') or {}, 'metrics'):
        yield f'val.metrics.{name}.type', block.get('type'), METRIC_REGISTRY, 'metric'


def _registered(name: str, registry: Registry) -> bool:
    """Whether BasicSR's ``registry.get(name)`` finds ``name`` (it also tries the ``_basicsr`` suffix)."""
    return name in registry or f'{name}_basicsr' in registry


def check_types(opt: dict, opt_path: str) -> None:
    """Check that every type the options name is registered.

    Args:
        opt (dict): Parsed options.
        opt_path (str): The option file, named in the errors.

    Raises:
        DesraSettingsError: Naming the option, the unknown type and the nearest registered names.
    """
    for option, name, registry, what in _typed_blocks(opt):
        if not name:
            raise DesraSettingsError(f'{opt_path}: {option} is missing; name a registered {what}')
        if not _registered(name, registry):
            # BasicSR also registers some names with a ``_basicsr`` suffix, which users never write
            names = dict.fromkeys(str(key)[:-len('_basicsr')] if str(key).endswith('_basicsr') else str(key)
                                  for key in registry.keys())
            close = difflib.get_close_matches(str(name), list(names), n=3)
            hint = f'did you mean {" or ".join(close)}?' if close else 'check the spelling'
            raise DesraSettingsError(f'{opt_path}: {option}: {name!r} is not a registered {what}; {hint}')


#: Keys that BasicSR's ``parse_options`` and training loop read without a default: top-level keys (the blocks among
#: them must be mappings), and keys of the ``train``, ``logger`` and ``val`` blocks.
REQUIRED_KEYS = ('name', 'model_type', 'num_gpu', 'scale', 'datasets', 'network_g', 'path', 'train', 'logger')
REQUIRED_BLOCKS = frozenset({'datasets', 'network_g', 'path', 'train', 'logger'})
REQUIRED_IN = {
    'train': ('total_iter', 'optim_g', 'scheduler'),
    'logger': ('print_freq', 'save_checkpoint_freq'),
    'val': ('val_freq', 'save_img'),
}
#: Keys every dataset block of a phase needs (BasicSR's loader); BasicSR's own datasets also need ``io_backend``.
DATASET_KEYS = {'train': ('type', 'batch_size_per_gpu', 'num_worker_per_gpu'), 'val': ('type', 'name')}
#: Keys a training dataset of these types reads without a default (its random crop and augmentation).
TRAIN_PATCH_KEYS = {'PairedImageDataset': ('gt_size', 'use_hflip', 'use_rot'), 'PseudoGTPairedDataset': ('gt_size', )}
#: Keys of a GAN model (BasicSR's ``SRGANModel`` and its subclasses) without checks of its own.
GAN_KEYS = (('network_d', ), ('train', 'optim_d'), ('train', 'gan_opt'))
#: Example of a complete option file, named in the errors.
EXAMPLE_OPTIONS = 'options/finetune_realesrgan_desra.yml'


def _missing(opt_path: str, option: str, what: str = 'BasicSR needs it') -> DesraSettingsError:
    return DesraSettingsError(f'{opt_path}: {option} is missing; {what} (see {EXAMPLE_OPTIONS})')


def _registered_class(name: Any, registry: Registry) -> Optional[type]:
    """The class registered as ``name`` (BasicSR's lookup), or None when the name is not registered."""
    return registry.get(name) if isinstance(name, str) and _registered(name, registry) else None


def _check_dataset_keys(opt: dict, opt_path: str) -> None:
    """Check the keys every dataset block needs (see :func:`check_required_keys`)."""
    if not isinstance(opt['datasets'].get('train'), dict):
        raise _missing(opt_path, 'datasets.train', 'BasicSR trains on it')
    for phase, block in opt['datasets'].items():
        kind = str(phase).split('_')[0]
        if kind not in DATASET_KEYS or not isinstance(block, dict):
            raise DesraSettingsError(f'{opt_path}: datasets.{phase}: not a dataset phase BasicSR knows; name it train, '
                                     'val or val_<name>, with a block of dataset options')
        required = list(DATASET_KEYS[kind])
        dataset = _registered_class(block.get('type'), DATASET_REGISTRY)
        if dataset is not None and not _plugin_owned(dataset):
            required.append('io_backend')
        if kind == 'train':
            required += TRAIN_PATCH_KEYS.get(getattr(dataset, '__name__', ''), ())
        for key in required:
            if block.get(key) is None:
                raise _missing(opt_path, f'datasets.{phase}.{key}', f'the {kind} dataset needs it')


def check_required_keys(opt: dict, opt_path: str) -> None:
    """Check the keys BasicSR cannot do without, before it parses the options or creates any folder.

    Without this check BasicSR stops with a KeyError traceback, some of them only after it created the
    experiment folder (archiving the previous run of the same name).

    Args:
        opt (dict): Options read from ``opt_path`` (``--force_yml`` applied).
        opt_path (str): The option file, named in the errors.

    Raises:
        DesraSettingsError: Naming the first missing key; for a DiffGAR restorer option file, naming its command.
    """
    if 'data' in opt and 'model' in opt and 'datasets' not in opt and 'network_g' not in opt:
        raise DesraSettingsError(f'{opt_path}: a DiffGAR restorer option file (top-level data: and model:), not a '
                                 f'BasicSR one; train it with: desra restore train -opt {opt_path} --out FOLDER')
    for key in REQUIRED_KEYS:
        if opt.get(key) is None:
            raise _missing(opt_path, key)
        if key in REQUIRED_BLOCKS and not isinstance(opt[key], dict):
            raise DesraSettingsError(f'{opt_path}: {key}: expected a block of options, got {opt[key]!r} (see '
                                     f'{EXAMPLE_OPTIONS})')
    if not isinstance(opt['name'], str):
        raise DesraSettingsError(f'{opt_path}: name: expected the run name, a string, got {opt["name"]!r}')
    for block, keys in REQUIRED_IN.items():
        if block == 'val' and not isinstance(opt.get('val'), dict):
            continue
        for key in keys:
            if opt[block].get(key) is None:
                raise _missing(opt_path, f'{block}.{key}')
    _check_dataset_keys(opt, opt_path)
    model = _registered_class(opt['model_type'], MODEL_REGISTRY)
    if model is not None and issubclass(model, SRGANModel) and getattr(model, 'check_options', None) is None:
        for keys in GAN_KEYS:
            if (opt if len(keys) == 1 else opt[keys[0]]).get(keys[-1]) is None:
                raise _missing(opt_path, '.'.join(keys), f'{model.__name__} trains a discriminator')


def check_network_keys(opt: dict, opt_path: str) -> None:
    """Check that the keys of every ``network_*`` block are arguments of its architecture, and none is missing.

    BasicSR passes them as keyword arguments, so an unknown or missing one stops the run with a TypeError traceback
    after the experiment folder was created.

    Args:
        opt (dict): Options, types already checked.
        opt_path (str): The option file, named in the errors.

    Raises:
        DesraSettingsError: Naming the option key and the architecture.
    """
    for key, block in opt.items():
        if not (str(key).startswith('network_') and isinstance(block, dict)):
            continue
        arch = ARCH_REGISTRY.get(block['type'])
        parameters = inspect.signature(arch).parameters
        if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            continue
        known = _parameters(arch)
        for name in block:
            if name != 'type' and name not in known:
                close = difflib.get_close_matches(str(name), sorted(known), n=1)
                hint = f'did you mean {close[0]}?' if close else f'its arguments: {", ".join(sorted(known))}'
                raise DesraSettingsError(f'{opt_path}: {key}.{name}: not an argument of {block["type"]}; {hint}')
        for name in sorted(known):
            if parameters[name].default is inspect.Parameter.empty and name not in block:
                raise DesraSettingsError(f'{opt_path}: {key}.{name} is missing; {block["type"]} needs it')


#: Keys whose change leaves a run resumable: the length of the run, and how the training data is loaded.
RESUMABLE_KEYS = frozenset({
    'train.total_iter', 'datasets.train.num_worker_per_gpu', 'datasets.train.pin_memory',
    'datasets.train.persistent_workers', 'datasets.train.prefetch_mode', 'datasets.train.num_prefetch_queue',
    'datasets.train.keep_in_memory'
})


def trained_options(opt: dict) -> dict:
    """The options that decide what a run trains, which a resumed run must share with the run it continues.

    ``model_type``, ``scale``, ``manual_seed``, every ``network_*`` block, the ``train`` block, the training
    dataset, and the pretrained networks of ``path`` (with their ``param_key_*`` and ``strict_load_*``), less
    :data:`RESUMABLE_KEYS`. Validation, logging and the run's name do not change the weights.

    Args:
        opt (dict): Options.

    Returns:
        dict: The selected options, nested as in ``opt``.
    """
    picked: Dict[str, Any] = {key: value for key, value in opt.items()
                              if key in ('model_type', 'scale', 'manual_seed') or str(key).startswith('network_')}
    picked['train'] = dict(opt.get('train') or {})
    train_set = (opt.get('datasets') or {}).get('train')
    picked['datasets'] = {'train': dict(train_set) if isinstance(train_set, dict) else train_set}
    picked['path'] = {key: value for key, value in (opt.get('path') or {}).items()
                      if str(key).startswith(('pretrain_network_', 'param_key_', 'strict_load_'))}
    for dotted in RESUMABLE_KEYS:
        block, key = dotted.rsplit('.', 1)
        node = picked
        for part in block.split('.'):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(key, None)
    return picked


def saved_options_file(experiment: str) -> Optional[str]:
    """The option file BasicSR saved in an experiment folder at the run's last start (``copy_opt_file``).

    BasicSR copies the ``-opt`` file there under its own name each time a run starts or resumes; the newest
    copy belongs to the run that wrote the newest training state.

    Args:
        experiment (str): The experiment folder.

    Returns:
        str | None: The newest ``*.yml`` / ``*.yaml`` there, or None.
    """
    if not osp.isdir(experiment):
        return None
    copies = [osp.join(experiment, f) for f in os.listdir(experiment) if f.endswith(('.yml', '.yaml'))]
    copies = [f for f in copies if osp.isfile(f)]
    return max(copies, key=os.path.getmtime) if copies else None


def _saved_command(path: str) -> List[str]:
    """The command line in the header BasicSR writes at the top of its copy (``# CMD:`` and the next line)."""
    with open(path, 'r') as f:
        head = [next(f, '') for _ in range(4)]
    for i, line in enumerate(head[:-1]):
        if line.strip() == '# CMD:':
            return head[i + 1].lstrip('#').split()
    return []


def check_resume_options(opt: dict, opt_path: str, auto_resume: bool) -> None:
    """Refuse to resume a run that was started with other training options (it would silently continue it).

    The options are compared with the copy BasicSR saved in the experiment folder of the state to be resumed
    (its own ``--force_yml`` entries, read from the copy's header, applied), before BasicSR overwrites that copy.

    Args:
        opt (dict): Options read from ``opt_path`` (``--force_yml`` applied).
        opt_path (str): The option file.
        auto_resume (bool): ``--auto_resume`` was given.

    Raises:
        DesraSettingsError: Naming both option files, the first differing keys and what to do.
    """
    state = resume_state_file({**opt, 'auto_resume': auto_resume})
    if state is None:
        return
    experiment = osp.dirname(osp.dirname(osp.abspath(state)))
    saved_path = saved_options_file(experiment)
    if saved_path is None:
        return
    saved = read_option_file(saved_path)
    try:
        apply_force_yml(saved, force_yml_entries(_saved_command(saved_path)), saved_path)
    except DesraSettingsError:  # entries that no longer apply (some may have been applied): the file as saved
        saved = read_option_file(saved_path)
    changed = list(option_differences(trained_options(saved), trained_options(opt)))
    if not changed:
        return
    shown = ', '.join(changed[:5]) + (', ...' if len(changed) > 5 else '')
    what = (f'remove or rename {experiment} to train anew (or drop --auto_resume)' if auto_resume else
            f'set path.resume_state: ~ to train anew, or resume with the options of {saved_path}')
    raise DesraSettingsError(f'{opt_path}: differs from {saved_path}, the options of the run it would resume '
                             f'({shown}); {what}')


def _resuming(opt: dict) -> bool:
    """Whether BasicSR will resume (it then loads the networks from the experiment folder, not the pretrain files)."""
    return resume_state_file(opt) is not None


def named_files(opt: dict) -> Dict[str, str]:
    """Files and folders that the options name, by absolute path: data roots, ``meta_info_file``, ``path.*``.

    Args:
        opt (dict): Parsed options.

    Returns:
        dict[str, str]: Absolute path -> the option that names it.
    """
    files = {}
    for phase, block in _blocks(opt, 'datasets'):
        for key, value in block.items():
            if (key.startswith('dataroot_') or key == 'meta_info_file') and isinstance(value, str):
                files[osp.abspath(value)] = f'datasets.{phase}.{key}'
    for key, value in (opt.get('path') or {}).items():
        if (key.startswith('pretrain_network_') or key == 'resume_state') and isinstance(value, str):
            files[osp.abspath(value)] = f'path.{key}'
    if (opt.get('train') or {}).get('perceptual_opt'):
        files[osp.abspath(VGG_PRETRAIN_PATH)] = 'train.perceptual_opt (VGG19 weights)'
    return files


def check_files(opt: dict) -> None:
    """Check that the data, the weights and the resume state the options name exist, and run the model's checks.

    When BasicSR will resume, the pretrained files are not needed (nor checked, nor the model's own checks, which
    would check them): it loads the networks saved in the experiment folder.

    Args:
        opt (dict): Parsed options, types already checked.

    Raises:
        DesraSettingsError: Naming the missing file or folder and its option.
    """
    for path, option in named_files(opt).items():
        if option.startswith('datasets.') and not osp.exists(path):
            raise DesraSettingsError(f'{path}: not found ({option}); correct the path in the option file')
    resume_state = opt['path'].get('resume_state')
    if resume_state and not opt.get('auto_resume') and not osp.isfile(resume_state):
        raise DesraSettingsError(f'{osp.abspath(resume_state)}: training state not found (path.resume_state); '
                                 'correct it, or set path.resume_state: ~ to start a new run')
    check_vgg_file(opt)
    if _resuming(opt):
        return
    check_pretrained_files(opt)
    model_check = getattr(MODEL_REGISTRY.get(opt['model_type']), 'check_options', None)
    if model_check is not None:
        model_check(opt)


def _parameters(fn, skip: FrozenSet[str] = frozenset()) -> FrozenSet[str]:
    """Names that can be passed to ``fn`` by keyword (``**kwargs`` excluded)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(name for name, p in inspect.signature(fn).parameters.items() if p.kind in kinds) - skip


def _plugin_owned(obj) -> bool:
    return getattr(obj, '__module__', '').startswith('desra_basicsr.')


def _known_keys(opt: dict) -> Iterator[Tuple[str, dict, FrozenSet[str], bool]]:
    """``(option prefix, block, known keys, strict)`` of every block the plugin owns (types already checked).

    ``strict``: the block's keys are passed as arguments, so an unknown key would stop the run (a TypeError).
    """
    for phase, block in _blocks(opt, 'datasets'):
        dataset_keys = getattr(DATASET_REGISTRY.get(block['type']), 'OPTION_KEYS', None)
        if dataset_keys is None:
            continue
        yield f'datasets.{phase}', block, dataset_keys, False
        transform = block.get('transform')
        if isinstance(transform, dict):
            transform_cls = TRANSFORM_REGISTRY.get(transform.get('type', 'ArtifactMaskTransform'))
            if _plugin_owned(transform_cls):
                yield f'datasets.{phase}.transform', transform, _parameters(transform_cls) | {'type'}, True
    train_keys = getattr(MODEL_REGISTRY.get(opt['model_type']), 'TRAIN_KEYS', None)
    if train_keys is not None and isinstance(opt.get('train'), dict):
        yield 'train', opt['train'], train_keys, False
    for name, block in _blocks(opt.get('val') or {}, 'metrics'):
        metric = METRIC_REGISTRY.get(block['type'])
        if _plugin_owned(metric):
            yield f'val.metrics.{name}', block, _parameters(metric, METRIC_IMAGE_KEYS) | METRIC_COMMON_KEYS, False


def unknown_keys(opt: dict) -> Tuple[List[str], List[str]]:
    """Unknown keys in the blocks the plugin owns: errors where they would stop the run, else warnings.

    Args:
        opt (dict): Parsed options, types already checked.

    Returns:
        tuple: ``(errors, warnings)``, one message per key (BasicSR silently ignores the keys warned about).
    """
    errors, warnings = [], []
    for prefix, block, known, strict in _known_keys(opt):
        for key in block:
            if key not in known:
                close = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f'did you mean {close[0]}?' if close else f'known keys: {", ".join(sorted(known))}'
                if strict:
                    errors.append(f'{prefix}.{key}: unknown key; {hint}')
                else:
                    warnings.append(f'{prefix}.{key}: unknown key, ignored; {hint}')
    return errors, warnings


def drop_idle_persistent_workers(opt: dict) -> List[str]:
    """Remove ``persistent_workers`` from loaders without worker processes (torch's DataLoader refuses it).

    BasicSR's validation loaders never have workers; a training loader has none with ``num_worker_per_gpu: 0``.

    Args:
        opt (dict): Parsed options, changed in place.

    Returns:
        list[str]: One notice per dropped key.
    """
    notices = []
    for phase, block in _blocks(opt, 'datasets'):
        if not block.get('persistent_workers'):
            continue
        if phase == 'train' and block.get('num_worker_per_gpu'):
            continue
        del block['persistent_workers']
        reason = 'num_worker_per_gpu is 0' if phase == 'train' else 'BasicSR loads validation data without workers'
        notices.append(f'datasets.{phase}.persistent_workers: ignored, {reason} (it needs worker processes)')
    return notices


def parse_checked_options(root_path: str, is_train: bool = True):
    """BasicSR's ``parse_options``, followed by the checks, warnings and loader fix of the module docstring.

    Args:
        root_path (str): Root of the run (BasicSR's argument).
        is_train (bool): Training options (BasicSR's argument).

    Returns:
        tuple: ``(opt, args)`` as BasicSR's ``parse_options``.

    Raises:
        DesraSettingsError: For a missing key, options that differ from those of the run to be resumed, an unknown
            type, an unknown key that would stop the run, a missing file or folder.
    """
    argv = sys.argv[1:]
    raw = effective_options(argv)
    if raw is not None:  # without -opt, BasicSR's parser says what is missing
        opt_path = _option_value(argv, '-opt')
        check_required_keys(raw, opt_path)
        if is_train:
            check_resume_options(raw, opt_path, '--auto_resume' in argv)
    opt, args = parse_options(root_path, is_train)
    check_types(opt, args.opt)
    check_network_keys(opt, args.opt)
    errors, warnings = unknown_keys(opt)
    if errors:
        raise DesraSettingsError(f'{args.opt}: {errors[0]}')
    check_files(opt)
    if os.environ.get('RANK', '0') == '0':
        for message in warnings:
            print(f'warning: {message}', file=sys.stderr)
    for message in drop_idle_persistent_workers(opt):
        notice(message)
    return opt, args


# ------------------------------------------------------------------------------------------------- user errors
def user_error(err: BaseException, opt_path: Optional[str]) -> Optional[Tuple[int, str]]:
    """The exit code and one-line message of a user error; None for anything else (a bug keeps its traceback).

    Args:
        err (BaseException): What stopped the run.
        opt_path (str | None): The ``-opt`` file.

    Returns:
        tuple | None: ``(exit code, message)``.
    """
    if isinstance(err, DesraSettingsError):
        return EXIT_SETTINGS, str(err)
    if isinstance(err, DesraInputError):
        return EXIT_INPUT, str(err)
    if isinstance(err, FileNotFoundError) and err.filename and opt_path and osp.isfile(opt_path):
        option = named_files(read_option_file(opt_path)).get(osp.abspath(err.filename))
        if option is not None:
            return EXIT_SETTINGS, f'{osp.abspath(err.filename)}: not found ({option}); put it there or correct it'
    if isinstance(err, KeyError) and err.args and str(err.args[0]).startswith('No object named'):
        return EXIT_SETTINGS, f'{opt_path}: {str(err.args[0]).rstrip("!")}; correct the type in the option file'
    return None


#: torch.load's errors for a file that is not a readable training state (RuntimeError: a torch zip archive that is
#: truncated or corrupt; TypeError / KeyError: a file without BasicSR's state dict).
STATE_LOAD_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, TypeError, KeyError, AttributeError)


def checked_state_loader(load_resume_state: Callable[[dict], Optional[dict]]) -> Callable[[dict], Optional[dict]]:
    """Wrap ``basicsr.train.load_resume_state`` (BasicSR's on GPUs, the CPU fix's otherwise) to name a bad state.

    Args:
        load_resume_state (Callable): The loader ``train_pipeline`` calls.

    Returns:
        Callable: The same loader; a training state that cannot be read raises one
        :class:`~desra_basicsr.errors.DesraSettingsError` naming the file instead of torch's traceback (whose
        advice to load with ``weights_only=False`` is not for a damaged file).
    """

    def load(opt: dict) -> Optional[dict]:
        state = resume_state_file(opt)
        try:
            return load_resume_state(opt)
        except STATE_LOAD_ERRORS as err:
            if state is None or not osp.isfile(state) or 'CUDA' in str(err):
                raise
            what = ('delete it to resume from the previous one' if opt.get('auto_resume') else
                    'set path.resume_state to another state, or to ~ to train anew')
            raise DesraSettingsError(f'{osp.abspath(state)}: unreadable training state ({load_error_reason(err)}); '
                                     f'{what}') from err

    return load


def _log_file() -> Optional[str]:
    """The ``train_*.log`` of BasicSR's logger, once it was created."""
    for handler in logging.getLogger('basicsr').handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def train_checked(root_path: str, argv: List[str]) -> None:
    """Run BasicSR's training pipeline with the plugin's checks; a user error becomes one exception.

    ``sys.argv``, BasicSR's ``parse_options`` and ``load_resume_state``, and ``$DESRA_DIST_BACKEND`` are restored
    afterwards, so the Python API (:mod:`desra_basicsr.jobs.finetune`) can train several times in one process, and
    the processes it starts later do not inherit this run's backend.

    Args:
        root_path (str): Root of the run (``experiments/`` is created there).
        argv (list[str]): Command-line arguments without the program name.

    Raises:
        DesraSettingsError: Unusable options or missing inputs (one line naming the file or key).
        DesraInputError: An input failed during training.
    """
    opt_path = _option_value(argv, '-opt')
    saved_argv, saved_parse = sys.argv[:], basicsr_train.parse_options
    saved_loader = basicsr_train.load_resume_state
    saved_backend = os.environ.get(DIST_BACKEND_ENV)
    try:
        sys.argv[1:] = prepare_argv(argv)
        basicsr_train.parse_options = parse_checked_options  # train_pipeline's one parse of the options
        basicsr_train.load_resume_state = checked_state_loader(saved_loader)
        basicsr_train.train_pipeline(root_path)
    except (DesraInputError, FileNotFoundError, KeyError) as err:
        known = user_error(err, opt_path)
        if known is None:
            raise
        code, message = known
        raise (DesraSettingsError if code == EXIT_SETTINGS else DesraInputError)(message) from err
    finally:
        sys.argv[:] = saved_argv
        basicsr_train.parse_options = saved_parse
        basicsr_train.load_resume_state = saved_loader
        if saved_backend is None:  # the option file's backend applies to this run only, not to later ones
            os.environ.pop(DIST_BACKEND_ENV, None)
        else:
            os.environ[DIST_BACKEND_ENV] = saved_backend


def run(root_path: str, argv: List[str]) -> int:
    """Run BasicSR's training pipeline; report a user error in one line.

    Args:
        root_path (str): Root of the run (``experiments/`` is created there).
        argv (list[str]): Command-line arguments without the program name.

    Returns:
        int: 0, or the exit code of a user error (2: unusable options or missing inputs, 1: an input failed).
    """
    try:
        train_checked(root_path, argv)
    except DesraInputError as err:
        message = str(err)
        log = _log_file()
        if log is not None:
            logging.getLogger('basicsr').error(message)
            message += f' (log: {log})'
        print(f'error: {message}', file=sys.stderr)
        return EXIT_SETTINGS if isinstance(err, DesraSettingsError) else EXIT_INPUT
    return 0


def main() -> None:
    """Run BasicSR's training pipeline rooted at the current working directory."""
    sys.exit(run(os.getcwd(), sys.argv[1:]))


if __name__ == '__main__':
    main()
