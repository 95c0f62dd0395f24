"""The torch device of a ``--device`` option: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, checked against this machine.

Under torchrun each rank takes its own GPU: ``auto`` and ``cuda`` give ``cuda:<local_rank % GPUs>``, and ``cuda:N``
gives ``cuda:<(N + local_rank) % GPUs>`` (``N`` is the first GPU of this machine's ranks). Other torch devices
(``mps``, ``xpu``, ``meta``, ...) are refused: the commands are built and tested on CPU and CUDA only.
"""
from typing import Optional

import torch

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.settings import DEVICE_PATTERN


def resolve_device(device: str = 'auto', local_rank: int = 0) -> torch.device:
    """Turn ``'auto'`` / ``'cpu'`` / ``'cuda'`` / ``'cuda:N'`` into this process's device, checking CUDA is there.

    Args:
        device (str): Device name; ``'auto'`` picks CUDA when available.
        local_rank (int): This process's rank on its machine (torchrun's ``LOCAL_RANK``; 0 outside torchrun).

    Returns:
        torch.device: The device.

    Raises:
        DesraSettingsError: If the name is not one of the four forms, CUDA is asked for and not available, or
            ``cuda:N`` names a GPU this machine does not have.
    """
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if not DEVICE_PATTERN.fullmatch(str(device)):
        raise DesraSettingsError(f'--device {device}: use cpu, cuda or cuda:N (or auto)')
    dev = torch.device(device)
    if dev.type == 'cpu':
        return dev
    if not torch.cuda.is_available():
        raise DesraSettingsError(f'--device {device}: CUDA is not available on this machine; use cpu')
    return torch.device('cuda', cuda_index(dev.index, local_rank, torch.cuda.device_count()))


def cuda_index(first: Optional[int], local_rank: int, count: int) -> int:
    """The GPU of a rank: ``(first + local_rank) % count`` (``first`` None counts as 0).

    Args:
        first (int | None): GPU named by the user (``cuda:N``), or None for plain ``cuda``.
        local_rank (int): The rank on this machine.
        count (int): GPUs visible to the process.

    Returns:
        int: The GPU index.

    Raises:
        DesraSettingsError: If ``first`` is not a visible GPU.
    """
    if first is not None and not 0 <= first < count:
        raise DesraSettingsError(f'--device cuda:{first}: this machine has {count} GPU(s) (cuda:0 .. cuda:{count - 1})')
    return ((first or 0) + local_rank) % count
