"""The one checkpoint reader of the package: SR generators, discriminators and segmentation models.

A checkpoint is read with ``torch.load(weights_only=True)`` (never an unsafe load) and must be a dict: either a bare
state dict (every value a tensor) or a container holding one under a key: BasicSR's ``params_ema`` / ``params``,
OpenMMLab's ``state_dict``. ``module.`` prefixes (DataParallel / DDP) are removed. Every failure is a
:class:`~desra_basicsr.errors.DesraInputError` naming the file and the problem in one short line; a key mismatch
lists the first few names and the counts.

Example::

    net = RRDBNet(3, 3, num_feat=64, num_block=23, num_grow_ch=32)
    key = load_weights(net, 'RealESRGAN_x4plus.pth')   # 'params_ema'
"""
import os
import os.path as osp
import pickle
import re
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from desra_basicsr.errors import DesraInputError

#: Keys of a checkpoint that hold a state dict, in order of preference.
STATE_DICT_KEYS = ('params_ema', 'params', 'state_dict')

#: How many key names a mismatch message lists.
KEYS_SHOWN = 5

#: Where users get the released weights the option files and the README name, by file name: the "Where to get it"
#: column of docs/finetune.md, section 2 ("Weights"), word for word (a test compares them). Nothing is downloaded.
WEIGHT_SOURCES = {
    'RealESRGAN_x4plus.pth': 'Real-ESRGAN GitHub releases (xinntao/Real-ESRGAN, release v0.1.0)',
    'RealESRGAN_x4plus_netD.pth': 'Real-ESRGAN GitHub releases (v0.2.2.3)',
    'RealESRNet_x4plus.pth': 'Real-ESRGAN GitHub releases (v0.1.1)',
    'net_g_RealESRGAN+LDL.pth': "LDL's GitHub repository (csjliang/LDL), link in its README",
    '003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth': 'SwinIR GitHub releases (JingyunLiang/SwinIR, v0.0)',
    '003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_PSNR.pth': 'SwinIR GitHub releases (v0.0)',
    'vgg19-dcbb9e9d.pth': "torchvision's VGG19 ImageNet weights (download.pytorch.org/models/vgg19-dcbb9e9d.pth)",
}


def weights_source(path: str) -> str:
    """Where users get a released weight file, as a clause for error messages.

    Args:
        path (str): The file (only its name counts).

    Returns:
        str: ``'get it from <source> (docs/finetune.md, section 2)'``, or ``''`` for a file not in
        :data:`WEIGHT_SOURCES`.
    """
    source = WEIGHT_SOURCES.get(osp.basename(path))
    return f'get it from {source} (docs/finetune.md, section 2)' if source else ''


def read_checkpoint(path: str) -> dict:
    """Load a checkpoint file as a dict, on the CPU, with ``weights_only=True``.

    Args:
        path (str): Checkpoint file.

    Returns:
        dict: The loaded object.

    Raises:
        DesraInputError: If the file is missing, empty, not a torch checkpoint, holds objects that are not plain
            tensors and containers, or is not a dict.
    """
    if not osp.isfile(path):
        source = weights_source(path)
        raise DesraInputError(f'{path}: checkpoint file not found' + (f'; {source}' if source else ''))
    if os.path.getsize(path) == 0:
        raise DesraInputError(f'{path}: checkpoint file is empty')
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses anyway
            warnings.simplefilter('ignore')
            ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        raise DesraInputError(f'{path}: {_unpickler_reason(err)}') from err
    except Exception as err:  # noqa: B902  (torch raises many types for corrupt or foreign files)
        raise DesraInputError(f'{path}: not a readable torch checkpoint, or truncated or corrupt '
                              f'({load_error_reason(err)})') from err
    if not isinstance(ckpt, dict):
        raise DesraInputError(f'{path}: holds a {type(ckpt).__name__}, not a state dict or checkpoint dict')
    return ckpt


def load_error_reason(err: BaseException) -> str:
    """Why ``torch.load`` failed, in a few words for a one-line message (without torch's advice on unsafe loading).

    Args:
        err (BaseException): What ``torch.load`` (or the use of its result) raised.

    Returns:
        str: The reason.
    """
    if isinstance(err, pickle.UnpicklingError):
        return _unpickler_reason(err)
    detail = str(err).strip().split('. ')[0].splitlines()[0][:200] if str(err).strip() else 'no detail'
    return f'{type(err).__name__}: {detail}'


def _unpickler_reason(err: Exception) -> str:
    """What torch's weights-only unpickler refused, without its advice on unsafe loading."""
    text = str(err)
    blocked = re.search(r'(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)', text)
    if blocked:
        return (f'refused: it loads {blocked.group(1)}, which is not a tensor or plain container (a crafted file, or '
                'one that pickled objects); save a plain state dict')
    marker = 'WeightsUnpickler error:'
    if marker in text:
        reason = text.split(marker, 1)[1].strip().split('\n')[0].strip()
        if reason.startswith('Unsupported operand') or not reason:
            return 'not a checkpoint of plain tensors and containers (corrupt, or not written by torch.save)'
        return f'not a checkpoint of plain tensors and containers ({reason.split(". Please use")[0][:200]})'
    return 'not a checkpoint of plain tensors and containers (not a torch checkpoint)'


def _is_state_dict(obj: object) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(torch.is_tensor(v) for v in obj.values())


def select_state_dict(ckpt: dict,
                      path: str,
                      param_key: Optional[str] = None,
                      fallback: Sequence[str] = STATE_DICT_KEYS) -> Tuple[Dict[str, torch.Tensor], str]:
    """Pick the state dict inside a loaded checkpoint.

    Args:
        ckpt (dict): As returned by :func:`read_checkpoint`.
        path (str): File named in errors.
        param_key (str | None): Key to use. When absent from the checkpoint, the first key of ``fallback`` present
            is used (BasicSR falls back from ``params_ema`` to ``params`` the same way); ignored for a bare state dict.
        fallback (Sequence[str]): Keys tried, in order, when ``param_key`` is None or absent.

    Returns:
        tuple: ``(state_dict, key)``; key ``''`` for a bare state dict. ``module.`` prefixes are removed.

    Raises:
        DesraInputError: If no state dict is found.
    """
    if _is_state_dict(ckpt):
        key, state = '', ckpt
    else:
        tried = ([param_key] if param_key else []) + [k for k in fallback if k != param_key]
        key = next((k for k in tried if _is_state_dict(ckpt.get(k))), None)
        if key is None:
            keys = ', '.join(map(str, list(ckpt)[:KEYS_SHOWN])) or 'none'
            raise DesraInputError(f'{path}: no state dict under {", ".join(map(repr, tried))} (top-level keys: '
                                  f'{keys}{", ..." if len(ckpt) > KEYS_SHOWN else ""})')
        state = ckpt[key]
    return {(k[7:] if k.startswith('module.') else k): v for k, v in state.items()}, key


def _listed(names: List[str], what: str) -> str:
    shown = ', '.join(names[:KEYS_SHOWN])
    return f'{len(names)} {what} ({shown}{", ..." if len(names) > KEYS_SHOWN else ""})'


def mismatch_message(own: Dict[str, torch.Tensor], state: Dict[str, torch.Tensor]) -> Tuple[str, bool]:
    """Describe how a state dict differs from a network's.

    Args:
        own (dict): The network's ``state_dict()``.
        state (dict): The checkpoint's state dict.

    Returns:
        tuple: ``(message, shapes_differ)``; the message is empty when the keys and shapes match.
    """
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    reshaped = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    parts = []
    if missing:
        parts.append(_listed(missing, 'missing keys'))
    if unexpected:
        parts.append(_listed(unexpected, 'unexpected keys'))
    if reshaped:
        shapes = [f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}' for k in reshaped]
        parts.append(_listed(shapes, 'shape mismatches'))
    return '; '.join(parts), bool(reshaped)


def load_weights(net: torch.nn.Module,
                 path: str,
                 param_key: Optional[str] = None,
                 strict: bool = True,
                 fallback: Sequence[str] = STATE_DICT_KEYS) -> Tuple[str, str]:
    """Load a checkpoint's state dict into ``net``, failing with a short message when it does not fit.

    Args:
        net (torch.nn.Module): Bare network (not DDP-wrapped).
        path (str): Checkpoint file.
        param_key (str | None): See :func:`select_state_dict`.
        strict (bool): Require the same keys. Shape mismatches are always an error.
        fallback (Sequence[str]): See :func:`select_state_dict`.

    Returns:
        tuple: ``(key, problems)``: the key used (``''`` for a bare state dict) and, for a non-strict load, the
        description of the key differences (empty when none).

    Raises:
        DesraInputError: If the file cannot be read, holds no state dict, or does not fit ``net``.
    """
    state, key = select_state_dict(read_checkpoint(path), path, param_key, fallback)
    problems, reshaped = mismatch_message(net.state_dict(), state)
    if problems and (strict or reshaped):
        where = f' [{key}]' if key else ''
        raise DesraInputError(f'{path}{where} does not fit {type(net).__name__}: {problems}')
    net.load_state_dict(state, strict=strict)
    return key, problems
