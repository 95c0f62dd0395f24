"""Resumable per-file jobs for the ``desra`` commands (detect, pseudo-gt, sr, labelme2mask, ...).

One function, :func:`run_file_jobs`, runs a callable on each item of a list with a tqdm progress bar and:

* skips items whose outputs all exist already (resume after an interruption; write outputs atomically, e.g. with
  :func:`desra_basicsr.image_io.write_image` or :func:`desra_basicsr.utils.atomic_write_path`, so an output
  that exists is complete);
* catches each item's exception and records it (``status: error``) instead of stopping the run;
* under ``python -m torch.distributed.run`` (env ``RANK`` / ``WORLD_SIZE``), processes only this rank's share of
  the sorted list (:func:`shard`: item ``i`` goes to rank ``i % world_size``), then gathers every rank's records
  on rank 0 (gloo process group, created if needed) which writes the one summary file;
* writes ``summary.json`` atomically: ``{"meta": ..., "counts": {"done": n, "skipped": n, "error": n},
  "items": {key: {"status": ..., **fields}}}``. Skipped items keep the fields of the previous summary.

Example::

    summary = run_file_jobs(pairs, key=lambda p: stem(p[0]), outputs=lambda p: [out_png(p)], process=detect_one,
                            summary_path='out/summary.json', desc='detect')
    return summary_exit_code(summary)
"""
import json
import os
import os.path as osp
import sys
from datetime import timedelta
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from tqdm import tqdm

from desra_basicsr.utils import atomic_write_path

T = TypeVar('T')

STATUS_DONE = 'done'
STATUS_SKIPPED = 'skipped'
STATUS_ERROR = 'error'


def dist_info() -> Tuple[int, int]:
    """This process's rank and the world size, from torchrun's environment (``RANK``, ``WORLD_SIZE``).

    Returns:
        tuple[int, int]: ``(rank, world_size)``; ``(0, 1)`` outside torchrun.

    Raises:
        ValueError: If the variables are malformed or inconsistent.
    """
    try:
        rank = int(os.environ.get('RANK', '0'))
        world_size = int(os.environ.get('WORLD_SIZE', '1'))
    except ValueError:
        raise ValueError(f'RANK / WORLD_SIZE must be integers, got {os.environ.get("RANK")!r} / '
                         f'{os.environ.get("WORLD_SIZE")!r}')
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f'invalid RANK {rank} for WORLD_SIZE {world_size}')
    return rank, world_size


def shard(items: Sequence[T], rank: int, world_size: int) -> List[T]:
    """This rank's share of ``items``: every ``world_size``-th item starting at ``rank``.

    The shares of ranks ``0 .. world_size - 1`` are disjoint and cover ``items``; pass a sorted list so every
    rank computes the same split.

    Args:
        items (Sequence): All items, in an order every rank agrees on.
        rank (int): This rank.
        world_size (int): Number of ranks.

    Returns:
        list: The items of this rank.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f'invalid rank {rank} for world size {world_size}')
    return list(items[rank::world_size])


def load_summary(path: str) -> Dict[str, Any]:
    """Read a summary written by :func:`run_file_jobs`; an absent or unreadable file gives an empty summary.

    Args:
        path (str): Summary file.

    Returns:
        dict: The summary (at least an empty ``items`` mapping).
    """
    try:
        with open(path, 'r', encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {'items': {}}
    if not isinstance(data, dict) or not isinstance(data.get('items'), dict):
        return {'items': {}}
    return data


def summary_exit_code(summary: Dict[str, Any]) -> int:
    """Exit code of a command from its summary: 1 if any item failed, else 0.

    Args:
        summary (dict): As returned by :func:`run_file_jobs`.

    Returns:
        int: 0 or 1.
    """
    return 1 if summary['counts'].get(STATUS_ERROR, 0) else 0


def _gather_records(records: Dict[str, dict], world_size: int) -> Dict[str, dict]:
    """All ranks' records on every rank (gloo all_gather_object); the group is created and destroyed if needed."""
    import torch.distributed as dist
    created = not dist.is_initialized()
    if created:
        # Ranks finish their shares at different times: wait long rather than time out a slow rank.
        dist.init_process_group(backend='gloo', timeout=timedelta(days=7))
    try:
        gathered: List[Optional[Dict[str, dict]]] = [None] * world_size
        dist.all_gather_object(gathered, records)
    finally:
        if created:
            dist.destroy_process_group()
    merged: Dict[str, dict] = {}
    for part in gathered:
        merged.update(part or {})
    return merged


def run_file_jobs(items: Sequence[T],
                  key: Callable[[T], str],
                  outputs: Callable[[T], List[str]],
                  process: Callable[[T], Optional[Dict[str, Any]]],
                  summary_path: str,
                  desc: str = '',
                  meta: Optional[Dict[str, Any]] = None,
                  extra_records: Optional[Dict[str, dict]] = None,
                  rank: Optional[int] = None,
                  world_size: Optional[int] = None) -> Dict[str, Any]:
    """Run ``process`` on each item (this rank's share), resumably, and write the merged summary.

    Args:
        items (Sequence): Work items, sorted (every rank must see the same order).
        key (Callable): Item -> unique name used in the summary (e.g. the file stem).
        outputs (Callable): Item -> output paths; an item whose outputs all exist is skipped.
        process (Callable): Item -> dict of summary fields (JSON-serialisable). It must write its outputs
            atomically. Any exception marks the item ``error`` with the exception's message.
        summary_path (str): Where rank 0 writes the summary JSON.
        desc (str): Progress bar label.
        meta (dict | None): Run settings stored under ``meta`` in the summary.
        extra_records (dict | None): Records added as they are (e.g. ``{stem: {'status': 'error', 'message':
            'no GAN-SR partner'}}`` for inputs that could not even become items); rank 0 adds them.
        rank (int | None): Override of the rank (default: :func:`dist_info`).
        world_size (int | None): Override of the world size (default: :func:`dist_info`).

    Returns:
        dict: The summary: merged over all ranks on rank 0 (and written to ``summary_path``); this rank's records
        only on other ranks (not written).
    """
    env_rank, env_world = dist_info()
    rank = env_rank if rank is None else rank
    world_size = env_world if world_size is None else world_size
    previous = load_summary(summary_path)['items']
    records: Dict[str, dict] = {}
    mine = shard(items, rank, world_size)
    label = desc if world_size == 1 else f'{desc} [rank {rank}/{world_size}]'
    for item in tqdm(mine, desc=label, unit='file', dynamic_ncols=True):
        name = key(item)
        if all(osp.exists(path) for path in outputs(item)):
            old = previous.get(name, {})
            fields = {k: v for k, v in old.items() if k not in ('status', 'message')}
            records[name] = {'status': STATUS_SKIPPED, **fields}
            continue
        try:
            fields = process(item) or {}
            records[name] = {'status': STATUS_DONE, **fields}
        except Exception as err:  # noqa: B902  (per-file capture is this helper's purpose)
            message = str(err) if isinstance(err, ValueError) else f'{type(err).__name__}: {err}'
            records[name] = {'status': STATUS_ERROR, 'message': message}
            tqdm.write(f'error: {message}', file=sys.stderr)
    if world_size > 1 and env_world > 1:
        records = _gather_records(records, world_size)
    if rank != 0:
        return {'meta': meta or {}, 'counts': _counts(records), 'items': records}
    records.update(extra_records or {})
    summary = {'meta': meta or {}, 'counts': _counts(records), 'items': dict(sorted(records.items()))}
    with atomic_write_path(summary_path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(summary, f, indent=2)
    return summary


def _counts(records: Dict[str, dict]) -> Dict[str, int]:
    """Number of records per status."""
    counts = {STATUS_DONE: 0, STATUS_SKIPPED: 0, STATUS_ERROR: 0}
    for record in records.values():
        counts[record['status']] = counts.get(record['status'], 0) + 1
    return counts
