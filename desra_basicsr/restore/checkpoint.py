"""The restorer's checkpoint file: a ``kind`` marker, the config, the class names and the U-Net weights.

Training writes resumable checkpoints (with the optimiser, the EMA weights and the iteration) and a final one
(the weights to restore with: the EMA weights when training kept them). A file without the marker (a BasicSR
``.pth``, a localiser checkpoint) is refused with a message saying what it is not, before anything is restored.
"""
from typing import Any, Dict, Mapping

import torch

from desra_basicsr.checkpoints import read_checkpoint
from desra_basicsr.errors import DesraInputError
from desra_basicsr.restore.model import Restorer, RestorerConfig
from desra_basicsr.utils import atomic_write_path

#: The ``kind`` of a restorer checkpoint.
KIND = 'desra-restorer'
#: Version of the file layout.
VERSION = 1


def save_checkpoint(path: str, config: RestorerConfig, unet: Mapping[str, torch.Tensor], **extra: Any) -> None:
    """Write a restorer checkpoint atomically.

    Args:
        path (str): The file.
        config (RestorerConfig): The restorer's config.
        unet (dict): The U-Net weights to restore with.
        **extra: More entries (training state: ``optimizer``, ``ema``, ``iter`` ...).
    """
    payload = {'kind': KIND, 'version': VERSION, 'config': config.to_dict(), 'classes': list(config.classes),
               'unet': {k: v.detach().cpu() for k, v in unet.items()}}
    payload.update(extra)
    with atomic_write_path(path) as tmp:
        torch.save(payload, tmp)


def read_restorer_checkpoint(path: str) -> Dict[str, Any]:
    """Read a restorer checkpoint safely (``weights_only``) and refuse a checkpoint of another kind.

    Args:
        path (str): The file.

    Returns:
        dict: The checkpoint.

    Raises:
        DesraInputError: If the file is missing, unreadable, or not a restorer checkpoint.
    """
    ckpt = read_checkpoint(path)
    if ckpt.get('kind') != KIND:
        what = f'a checkpoint of kind {ckpt["kind"]!r}' if 'kind' in ckpt else \
            f'a checkpoint without a kind marker (keys: {", ".join(map(str, list(ckpt)[:5]))})'
        raise DesraInputError(f'{path}: not a desra restorer checkpoint ({what}, e.g. BasicSR or mmseg weights); '
                              'give one written by `desra restore train`')
    if ckpt.get('version') != VERSION or not isinstance(ckpt.get('config'), dict) or 'unet' not in ckpt:
        raise DesraInputError(f'{path}: restorer checkpoint of an unknown layout (version {ckpt.get("version")}); '
                              'train it again with this version of desra')
    return ckpt


def load_restorer(path: str, device: torch.device) -> Restorer:
    """The restorer of a checkpoint, in eval mode on ``device``.

    Args:
        path (str): The checkpoint file.
        device (torch.device): Where to put it.

    Returns:
        Restorer: The restorer (its autoencoder loaded from the folder the config names, in latent space).

    Raises:
        DesraInputError: If the file is not a loadable restorer checkpoint.
        DesraSettingsError: If its autoencoder folder cannot be loaded.
    """
    ckpt = read_restorer_checkpoint(path)
    try:
        restorer = Restorer(RestorerConfig.from_dict(ckpt['config']))
        restorer.unet.load_state_dict(ckpt['unet'])
    except (TypeError, KeyError, RuntimeError) as err:
        detail = str(err).strip().splitlines()[0][:200]
        raise DesraInputError(f'{path}: restorer checkpoint whose config and weights do not agree ({detail})') \
            from err
    return restorer.to(device).eval()
