"""Training entry point: BasicSR's ``train_pipeline`` with the plugin's components registered.

Usage (from the repository root, as with Real-ESRGAN's ``realesrgan/train.py``)::

    python desra_basicsr/train.py -opt options/finetune_realesrgan_desra.yml [--auto_resume]
    python -m torch.distributed.run --nproc_per_node=4 desra_basicsr/train.py \\
        -opt options/finetune_realesrgan_desra.yml --launcher pytorch [--auto_resume]

Any BasicSR option file works, ours or the user's own. Runs are written to ``experiments/<name>/`` under the
current working directory, the same place ``--auto_resume`` looks for training states.

Before BasicSR creates the experiment folder, the options it parsed are checked: every type must be registered
(``model_type``, ``network_*``, datasets, the plugin's transform, losses, metrics), and the files and folders the
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
import sys
from typing import Dict, FrozenSet, Iterator, List, Optional, Tuple

import yaml

import desra_basicsr  # noqa: F401  (applies the compat fixes and registers the plugin's components)
from basicsr import train as basicsr_train
from basicsr.utils.options import ordered_yaml, parse_options
from basicsr.utils.registry import (ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY,
                                    Registry)
from desra_basicsr.compat import DIST_BACKEND_ENV
from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.models.desra_finetune_model import VGG_PRETRAIN_PATH, check_pretrained_files, check_vgg_file
from desra_basicsr.registry import TRANSFORM_REGISTRY
from desra_basicsr.utils import notice

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


def prepare_argv(argv: List[str]) -> List[str]:
    """Make the command line acceptable to BasicSR's parser and export the option file's dist backend.

    * ``torch.distributed.launch`` on torch 2.x passes ``--local-rank``; BasicSR's parser only knows
      ``--local_rank``.
    * ``dist_params.backend`` in the option file (BasicSR only honours it for slurm) is exported as
      ``$DESRA_DIST_BACKEND`` for the pytorch launcher; without it, nccl is used on GPUs and gloo on CPU.

    Args:
        argv (list[str]): Command-line arguments without the program name.

    Returns:
        list[str]: Arguments for BasicSR's parser.

    Raises:
        DesraSettingsError: If the ``-opt`` file is missing or is not a YAML mapping.
    """
    argv = [('--local_rank' + arg[len('--local-rank'):]) if arg.startswith('--local-rank') else arg for arg in argv]
    opt_path = _option_value(argv, '-opt')
    if opt_path:
        backend = (read_option_file(opt_path).get('dist_params') or {}).get('backend')
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
            close = difflib.get_close_matches(str(name), [str(key) for key in registry.keys()], n=3)
            hint = f'did you mean {" or ".join(close)}?' if close else 'check the spelling'
            raise DesraSettingsError(f'{opt_path}: {option}: {name!r} is not a registered {what}; {hint}')


def _resuming(opt: dict) -> bool:
    """Whether BasicSR will resume (it then loads the networks from the experiment folder, not the pretrain files)."""
    if opt['path'].get('resume_state'):
        return True
    states = osp.join('experiments', opt['name'], 'training_states')
    return bool(opt.get('auto_resume')) and osp.isdir(states) and any(f.endswith('.state') for f in os.listdir(states))


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
        DesraSettingsError: For an unknown type, an unknown key that would stop the run, a missing file or folder.
    """
    opt, args = parse_options(root_path, is_train)
    check_types(opt, args.opt)
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


def _log_file() -> Optional[str]:
    """The ``train_*.log`` of BasicSR's logger, once it was created."""
    for handler in logging.getLogger('basicsr').handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def train_checked(root_path: str, argv: List[str]) -> None:
    """Run BasicSR's training pipeline with the plugin's checks; a user error becomes one exception.

    ``sys.argv``, BasicSR's ``parse_options`` and ``$DESRA_DIST_BACKEND`` are restored afterwards, so the Python API
    (:mod:`desra_basicsr.jobs.finetune`) can train several times in one process, and the processes it starts later
    do not inherit this run's backend.

    Args:
        root_path (str): Root of the run (``experiments/`` is created there).
        argv (list[str]): Command-line arguments without the program name.

    Raises:
        DesraSettingsError: Unusable options or missing inputs (one line naming the file or key).
        DesraInputError: An input failed during training.
    """
    opt_path = _option_value(argv, '-opt')
    saved_argv, saved_parse = sys.argv[:], basicsr_train.parse_options
    saved_backend = os.environ.get(DIST_BACKEND_ENV)
    try:
        sys.argv[1:] = prepare_argv(argv)
        basicsr_train.parse_options = parse_checked_options  # train_pipeline's one parse of the options
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
