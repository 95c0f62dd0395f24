"""The one resumable folder-job core under the ``desra`` folder commands and their Python API.

A folder job turns input files into output files one item at a time (an item is, say, one image pair). The core
makes every such job behave the same way:

* **Safe output folder.** :func:`desra_basicsr.folders.check_out_dir` refuses an ``out_dir`` that is empty, equal to
  or inside an input folder, a file, not writable, or too long a name for the file system, before any work is done
  and before anything is created.
* **Resume only what is still valid.** ``OUT/summary.json`` records the job's settings (``meta``: the command, every
  option that changes the outputs, the input folders, a SHA-256 of each weights file) and, per item, the size,
  modification time and SHA-256 of each input file (``sources``; :func:`unchanged_since` says whether one changed:
  a file written again with the same bytes has not) and the output files it wrote (``outputs``, relative to
  ``OUT``). Every path is normalised once (:func:`desra_basicsr.settings.normalise_path`), so a folder typed as
  ``sr/mse``, ``./sr/mse`` or ``$PWD/sr/mse``, from any working folder, is the same input. Running the job again
  skips the items whose record, inputs and outputs are all still there (an empty output file is not finished), and
  redoes the rest (failed items, items without a record, items whose output vanished). When the settings or an
  input file changed, the job refuses with a message naming the difference, unless ``overwrite=True``
  (``--overwrite``): then every item is computed again. A folder that holds outputs but no summary of the job is
  refused the same way.
* **Never another command's files.** A folder whose summary was written by another command, or that holds a
  ``summary.json`` which is not a job summary, is refused even with ``overwrite``: choose another ``--out``.
* **No stale outputs.** The files that an earlier run of the job recorded and this run does not write (the outputs
  of an item whose input was deleted, ``maps/`` of a run with other options) are removed with a notice, so that a
  later command pairing files by stem does not pick them up; files the job did not record are never touched.
* **Never a half-written file.** Outputs are written to a temporary name and renamed (write them with
  :func:`desra_basicsr.image_io.write_image` or :func:`desra_basicsr.utils.atomic_write_path`); the temporary files
  (:data:`desra_basicsr.utils.TEMP_NAME`) left by a killed run are removed when the job starts again. A full disk
  stops the job with a message naming the file it could not write; ``summary.json`` keeps its last complete version.
* **A summary that survives interruption.** ``summary.json`` is rewritten atomically every few items, when the job
  is interrupted (Ctrl-C, SIGTERM: :class:`Interrupted`) and at the end, so a resumed run keeps the record of every
  finished item. A run that was killed and resumed ends with the same outputs and the same ``summary.json`` as an
  uninterrupted run.
* **Per-item failures.** An exception while processing an item is recorded (``status: error`` and its message) and
  the job goes on; the result's :attr:`JobResult.exit_code` is 1 when any item failed.
* **torchrun.** Under ``python -m torch.distributed.run`` (``RANK`` / ``WORLD_SIZE`` set), each rank processes
  every ``WORLD_SIZE``-th item; rank 0 prepares the folder and writes the summary, and the records are gathered
  over gloo with a :data:`DIST_TIMEOUT` limit, so a rank that dies makes the others stop with :class:`RankError`
  instead of waiting for days. A *collective* job (``FolderJob.collective``, e.g. a distributed training) has every
  rank process every item together, and rank 0's record of each item is kept. The core uses the process group
  that already exists (a job may create it with its own backend first), and creates a gloo one otherwise.

Example (a job that writes one grey copy per image)::

    from desra_basicsr.folders import check_out_dir
    from desra_basicsr.image_io import list_images, read_image, stem, write_image
    from desra_basicsr.jobs.core import FolderJob, JobItem, run_job

    check_out_dir('grey', {'input': 'photos'})
    items = [JobItem(stem(n), inputs=(f'photos/{n}', ), outputs=(f'grey/{stem(n)}.png', ))
             for n in list_images('photos')]

    def process(item):
        img = read_image(item.inputs[0])
        write_image(item.outputs[0], img.mean(axis=2).astype('uint8'))
        return {'height': img.shape[0]}          # stored in summary.json under the item's name

    result = run_job(FolderJob(command='grey', out_dir='grey', input_dirs={'input': 'photos'},
                               settings={'input': 'photos'}, items=items, process=process))
    print(result.done, result.skipped, result.failed)  # this run's counts; result.summary is the JSON
"""
import dataclasses
import errno
import hashlib
import json
import os
import os.path as osp
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, TypeVar,
                    Union)

from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.folders import check_out_dir
from desra_basicsr.settings import normalise_path
from desra_basicsr.utils import atomic_write_path, notice, remove_stale_temp_files

T = TypeVar('T')

STATUS_DONE = 'done'
STATUS_ERROR = 'error'
SUMMARY_NAME = 'summary.json'

#: How long a rank waits for the others (folder preparation, gathering the records) before giving up.
DIST_TIMEOUT = timedelta(minutes=30)
#: The summary is rewritten at least this often (seconds) while items finish.
SUMMARY_INTERVAL = 5.0
#: Errors of a full disk or quota: they stop the job (every later item would fail the same way).
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
#: How many differences or files a refusal lists.
SHOWN = 5


class Interrupted(KeyboardInterrupt):
    """A job was stopped by a signal (SIGTERM); ``signum`` gives the exit code 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(f'signal {signum}')
        self.signum = signum


class RankError(RuntimeError):
    """Another torchrun rank did not answer in time (it died or hangs); finished files are kept."""


@dataclass(frozen=True)
class JobItem:
    """One unit of work of a folder job.

    Attributes:
        name (str): Unique key of the item in ``summary.json`` (usually the file stem).
        inputs (tuple[str, ...]): Input files; their sizes and modification times are recorded.
        outputs (tuple[str, ...]): Output files; all must exist for the item to count as finished.
    """
    name: str
    inputs: Tuple[str, ...]
    outputs: Tuple[str, ...]


@dataclass
class FolderJob:
    """Everything :func:`run_job` needs to know about a job.

    Attributes:
        command (str): Job name, stored in ``meta`` (a folder written by another job is refused).
        out_dir (str): Output folder; ``summary.json`` goes there.
        input_dirs (dict[str, str]): Input folders by role; ``out_dir`` may be neither of them nor inside one.
        settings (dict): Every option that changes the outputs (JSON-serialisable), stored in ``meta``.
        items (Sequence[JobItem]): The work, in an order every rank agrees on (sorted by name).
        process (Callable): Item -> dict of JSON-serialisable fields for the item's record (or None). It must write
            the item's outputs atomically. Raising marks the item failed with the exception's message.
        weights (dict[str, str]): Files whose SHA-256 is part of the settings (e.g. ``{'weights': path}``).
        failures (dict[str, str]): Items that could not even be formed (e.g. a missing partner file): name ->
            message; recorded as failed.
        desc (str): Progress bar label (default: ``command``).
        collective (bool): Under torchrun, every rank processes every item together (a distributed training)
            instead of its share of the items; the summary keeps rank 0's records.
    """
    command: str
    out_dir: str
    input_dirs: Mapping[str, str]
    settings: Dict[str, Any]
    items: Sequence[JobItem]
    process: Callable[[JobItem], Optional[Dict[str, Any]]]
    weights: Mapping[str, str] = field(default_factory=dict)
    failures: Mapping[str, str] = field(default_factory=dict)
    desc: str = ''
    collective: bool = False


@dataclass
class JobResult:
    """What a folder job did.

    Attributes:
        out_dir (str): The output folder.
        summary (dict): The content of ``summary.json`` (on rank 0; this rank's records only on other ranks).
        done (int): Items computed by this run.
        skipped (int): Items kept from an earlier run.
        failed (int): Items that failed in this run (including those in ``FolderJob.failures``).
    """
    out_dir: str
    summary: Dict[str, Any]
    done: int = 0
    skipped: int = 0
    failed: int = 0

    @property
    def summary_path(self) -> str:
        """Path of ``summary.json``."""
        return osp.join(self.out_dir, SUMMARY_NAME)

    @property
    def items(self) -> Dict[str, Dict[str, Any]]:
        """Per-item records of the summary, by name."""
        return self.summary['items']

    @property
    def exit_code(self) -> int:
        """1 when an item failed in this run, else 0."""
        return 1 if self.failed else 0

    def require_all_done(self, what: str) -> None:
        """Refuse to go on from a run with failed items (for jobs that chain folder jobs, e.g. the loop).

        Args:
            what (str): The step, for the message.

        Raises:
            DesraInputError: If an item failed in this run.
        """
        if self.failed:
            raise DesraInputError(f'{what}: {self.failed} item(s) failed (see {self.summary_path})')

    def describe(self) -> str:
        """One line for the terminal: counts of this run and the summary's path."""
        return (f'{self.summary["meta"].get("command", "job")}: {self.done} done, {self.skipped} kept from an '
                f'earlier run, {self.failed} failed; summary: {self.summary_path}')


def sha256_file(path: str) -> str:
    """SHA-256 of a file, hex.

    Args:
        path (str): The file.

    Returns:
        str: The digest.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def file_signature(paths: Iterable[str]) -> Dict[str, List[Union[int, str]]]:
    """Size, modification time (ns) and SHA-256 of each file: what decides whether an input changed.

    Args:
        paths (Iterable[str]): Files.

    Returns:
        dict: ``{path: [size, mtime_ns, sha256]}``.
    """
    out: Dict[str, List[Union[int, str]]] = {}
    for path in paths:
        st = os.stat(path)
        out[path] = [int(st.st_size), int(st.st_mtime_ns), sha256_file(path)]
    return out


def unchanged_since(recorded: Any, path: str) -> bool:
    """Whether ``path`` still holds the file that :func:`file_signature` recorded as ``recorded``.

    Same size and modification time is enough; a file of the same size with another modification time (written
    again, copied, restored from a backup) is unchanged when its SHA-256 is the recorded one, so a program that
    rewrites an input with the same bytes does not make the jobs reading it start over. A record of two numbers
    (size and modification time, as summaries written before the digest was added hold) is compared on those alone.

    Args:
        recorded (Any): The record, ``[size, mtime_ns, sha256]`` or ``[size, mtime_ns]``.
        path (str): The file.

    Returns:
        bool: False also when the file is missing or the record is not one of those shapes.
    """
    if not isinstance(recorded, list) or len(recorded) not in (2, 3):
        return False
    try:
        st = os.stat(path)
        if [int(st.st_size), int(st.st_mtime_ns)] == recorded[:2]:
            return True
        return len(recorded) == 3 and st.st_size == recorded[0] and sha256_file(path) == recorded[2]
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------- torchrun
def dist_info() -> Tuple[int, int]:
    """This process's rank and the world size, from torchrun's environment (``RANK``, ``WORLD_SIZE``).

    Returns:
        tuple[int, int]: ``(rank, world_size)``; ``(0, 1)`` outside torchrun.

    Raises:
        DesraSettingsError: If the variables are malformed or inconsistent.
    """
    try:
        rank = int(os.environ.get('RANK', '0'))
        world_size = int(os.environ.get('WORLD_SIZE', '1'))
    except ValueError:
        raise DesraSettingsError(f'RANK / WORLD_SIZE must be integers, got {os.environ.get("RANK")!r} / '
                                 f'{os.environ.get("WORLD_SIZE")!r}')
    if world_size < 1 or not 0 <= rank < world_size:
        raise DesraSettingsError(f'invalid RANK {rank} for WORLD_SIZE {world_size}')
    return rank, world_size


def under_torchrun() -> bool:
    """Whether ``python -m torch.distributed.run`` started this process, whatever the world size (one process too).

    Returns:
        bool: True when torchrun's ``LOCAL_RANK`` and ``WORLD_SIZE`` are set.
    """
    return 'LOCAL_RANK' in os.environ and 'WORLD_SIZE' in os.environ


def discard_training_state(folder: str) -> None:
    """Delete a training's resumable state so that it starts again (``--overwrite``): rank 0 deletes, every rank waits.

    Call it from the job's ``process``, which :func:`run_job` calls only once it has found that the output folder is
    the command's own: a folder of another command is refused with its files untouched.

    Args:
        folder (str): The folder of the training's checkpoints.
    """
    if dist_info()[0] == 0:
        shutil.rmtree(folder, ignore_errors=True)
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # no rank resumes from a checkpoint rank 0 is deleting


def local_rank() -> int:
    """This process's rank on its machine (torchrun's ``LOCAL_RANK``; 0 outside torchrun).

    Returns:
        int: The local rank.
    """
    try:
        return int(os.environ.get('LOCAL_RANK', '0'))
    except ValueError:
        raise DesraSettingsError(f'LOCAL_RANK must be an integer, got {os.environ.get("LOCAL_RANK")!r}')


def shard(items: Sequence[T], rank: int, world_size: int) -> List[T]:
    """This rank's share of ``items``: every ``world_size``-th item starting at ``rank``.

    The shares of ranks ``0 .. world_size - 1`` are disjoint and cover ``items``.

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


class _Group:
    """The gloo process group of a job under torchrun (created and destroyed here unless one exists)."""

    def __init__(self, world_size: int) -> None:
        self.active = world_size > 1
        self.created = False
        if self.active:
            import torch.distributed as dist
            self.dist = dist
            if not dist.is_initialized():
                dist.init_process_group(backend='gloo', timeout=DIST_TIMEOUT)
                self.created = True

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except RuntimeError as err:
            raise RankError(f'{what}: another rank did not answer within {DIST_TIMEOUT} (it died or hangs): '
                            f'{str(err).splitlines()[0] if str(err) else type(err).__name__}. The files finished so '
                            'far are kept: run the command again to resume.') from err

    def barrier(self) -> None:
        if self.active:
            self._call('waiting for the other ranks', self.dist.barrier)

    def gather(self, records: Dict[str, dict]) -> List[Dict[str, dict]]:
        if not self.active:
            return [records]
        parts: List[Optional[Dict[str, dict]]] = [None] * self.dist.get_world_size()
        self._call('gathering the results of every rank', lambda: self.dist.all_gather_object(parts, records))
        return [p or {} for p in parts]

    def close(self) -> None:
        if self.created:
            self.dist.destroy_process_group()


# ----------------------------------------------------------------------------------------------- summary
def load_summary(path: str) -> Optional[Dict[str, Any]]:
    """Read a ``summary.json`` written by :func:`run_job`.

    Args:
        path (str): The file.

    Returns:
        dict | None: The summary, or None when the file does not exist.

    Raises:
        DesraSettingsError: If the file exists but is not such a summary (its folder may belong to another program,
            so ``--overwrite`` does not take it either).
    """
    if not osp.exists(path):
        return None
    problem = 'not a job summary'
    try:
        with open(path, 'r', encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        data, problem = None, f'unreadable: {err}'
    if not isinstance(data, dict) or not isinstance(data.get('items'), dict) or not isinstance(data.get('meta'), dict):
        raise DesraSettingsError(f'{path}: not written by desra ({problem}), so its folder may hold the files of '
                                 'another program and --overwrite will not replace them; choose another --out, or '
                                 f'delete {path} yourself if every file in {osp.dirname(path)} may be replaced')
    return data


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> List[str]:
    keys = sorted(set(old) | set(new), key=str)
    return [f'{k}: {json.dumps(old.get(k))} -> {json.dumps(new.get(k))}' for k in keys if old.get(k) != new.get(k)]


def _counts(records: Mapping[str, dict]) -> Dict[str, int]:
    counts = {STATUS_DONE: 0, STATUS_ERROR: 0}
    for record in records.values():
        counts[record['status']] = counts.get(record['status'], 0) + 1
    return counts


def _write_summary(path: str, meta: Dict[str, Any], records: Mapping[str, dict]) -> Dict[str, Any]:
    """Write ``summary.json`` atomically; on a full disk the previous version stays as it was."""
    summary = {'meta': meta, 'counts': _counts(records), 'items': dict(sorted(records.items()))}
    try:
        with atomic_write_path(path) as tmp:
            with open(tmp, 'w', encoding='utf-8') as f:
                json.dump(summary, f, indent=2)
                f.write('\n')
    except OSError as err:
        raise DesraInputError(f'{path}: cannot write ({err.strerror or err}); its last complete version is kept: make '
                              'room, then run the same command again to resume') from err
    return summary


def _listing(names: Sequence[str], sep: str = ', ') -> str:
    return sep.join(names[:SHOWN]) + (f'{sep}...' if len(names) > SHOWN else '')


def _normalised(job: FolderJob) -> FolderJob:
    """The job with every path in its one normal form, so that records match however a path was typed."""
    items = [
        JobItem(item.name, tuple(map(normalise_path, item.inputs)), tuple(map(normalise_path, item.outputs)))
        for item in job.items
    ]
    return dataclasses.replace(
        job,
        out_dir=normalise_path(job.out_dir),
        input_dirs={
            role: normalise_path(folder) if folder else folder
            for role, folder in job.input_dirs.items()
        },
        weights={
            role: normalise_path(path)
            for role, path in job.weights.items()
        },
        items=items)


def _finished(path: str) -> bool:
    """An output counts as written when it is a non-empty file (an empty one is what a failed write leaves)."""
    return osp.isfile(path) and osp.getsize(path) > 0


def _sources_of(record: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    sources = record.get('sources')
    return {normalise_path(path): sig for path, sig in sources.items()} if isinstance(sources, dict) else None


def _refuse_foreign(job: FolderJob, previous: Optional[Dict[str, Any]]) -> None:
    """Refuse a folder whose summary was written by another command, whatever ``overwrite`` says."""
    if previous is None or previous['meta'].get('command') == job.command:
        return
    owner = previous['meta'].get('command')
    writer = f'`desra {owner}`' if isinstance(owner, str) else 'another program'
    raise DesraSettingsError(f'{job.out_dir}: holds the outputs of {writer} ({osp.join(job.out_dir, SUMMARY_NAME)}); '
                             f'`desra {job.command}` does not write into the folder of another command, not even with '
                             '--overwrite: choose another --out')


def _valid_previous(job: FolderJob, previous: Optional[Dict[str, Any]], meta: Dict[str, Any],
                    overwrite: bool) -> Dict[str, dict]:
    """Records of the previous run that still describe the outputs; refuses changed settings or inputs."""
    summary_path = osp.join(job.out_dir, SUMMARY_NAME)
    if overwrite:
        return {}
    if previous is None:
        existing = [p for item in job.items for p in item.outputs if osp.exists(p)]
        if existing:
            raise DesraSettingsError(f'{job.out_dir}: holds outputs of this job ({_listing(existing)}) but no '
                                     f'{SUMMARY_NAME}, so their settings are unknown; use another --out, or '
                                     '--overwrite to compute them again')
        return {}
    changed = _differences(previous['meta'], meta)
    if changed:
        raise DesraSettingsError(f'{job.out_dir}: was written with other settings ({_listing(changed, "; ")}); use '
                                 f'another --out, or --overwrite to compute every output again ({summary_path})')
    kept, modified = {}, []
    for item in job.items:
        record = previous['items'].get(item.name)
        if not isinstance(record, dict) or record.get('status') != STATUS_DONE:
            continue
        sources = _sources_of(record)
        same = sources is not None and set(sources) == set(item.inputs) and all(
            unchanged_since(sources[path], path) for path in item.inputs)
        if not same:
            modified.append(item.name)
        elif all(_finished(p) for p in item.outputs):
            kept[item.name] = record
    if modified:
        raise DesraSettingsError(f'{job.out_dir}: the inputs of {len(modified)} finished item(s) changed since they '
                                 f'were computed ({_listing(modified)}); use another --out, or --overwrite to compute '
                                 'every output again')
    return kept


def _stale_outputs(job: FolderJob, previous: Optional[Dict[str, Any]]) -> List[str]:
    """The files an earlier run of this job recorded as its outputs and this run does not write (inside OUT only)."""
    if previous is None:
        return []
    root = osp.realpath(job.out_dir)
    current: Set[str] = {osp.realpath(p) for item in job.items for p in item.outputs}
    stale = set()
    for record in previous['items'].values():
        outputs = record.get('outputs') if isinstance(record, dict) else None
        for name in outputs if isinstance(outputs, list) else []:
            path = osp.realpath(osp.join(root, str(name)))
            if path.startswith(root + os.sep) and path not in current and osp.isfile(path):
                stale.add(path)
    return sorted(stale)


def _remove_stale(job: FolderJob, previous: Optional[Dict[str, Any]], stale: Sequence[str]) -> None:
    """Remove the stale outputs (and the folders they leave empty inside OUT), with notices."""
    names = {item.name for item in job.items} | set(job.failures)
    vanished = sorted(name for name in (previous or {}).get('items', {}) if name not in names)
    if vanished:
        notice(f'{len(vanished)} item(s) of the earlier run are no longer in the inputs; their records are dropped '
               f'({_listing(vanished)})')
    root = osp.realpath(job.out_dir)
    for path in stale:
        os.remove(path)
    for folder in sorted({osp.dirname(p) for p in stale}, key=len, reverse=True):
        if folder != root and not os.listdir(folder):
            os.rmdir(folder)
    if stale:
        notice(f'removed {len(stale)} file(s) that the earlier run wrote and this run does not '
               f'({_listing([osp.relpath(p, root) for p in stale])})')


def _message(err: Exception) -> str:
    return str(err) if isinstance(err, DesraInputError) else f'{type(err).__name__}: {err}'


def _done_record(job: FolderJob, item: JobItem, fields: Mapping[str, Any]) -> Dict[str, Any]:
    return {
        'status': STATUS_DONE,
        **fields,
        'sources': file_signature(item.inputs),
        'outputs': [osp.relpath(p, job.out_dir) for p in item.outputs],
    }


def run_job(job: FolderJob, overwrite: bool = False, progress: bool = True) -> JobResult:
    """Run a folder job resumably (see the module docstring).

    SIGTERM raises :class:`Interrupted` while the job runs (Ctrl-C raises ``KeyboardInterrupt``); either way the
    summary is written before the exception goes on to the caller.

    Args:
        job (FolderJob): The job.
        overwrite (bool): Compute every item again, whatever an earlier run of the same command left.
        progress (bool): Show a tqdm progress bar on stderr.

    Returns:
        JobResult: Counts of this run and the summary.

    Raises:
        DesraSettingsError: If the output folder cannot be used (it belongs to another command, or the settings or
            inputs changed since the outputs there were computed and ``overwrite`` is False), or the environment
            sets an unusable ``RANK`` / ``WORLD_SIZE`` or ``DESRA_MAX_IMAGE_PIXELS``; nothing is written then.
        DesraInputError: If the disk is full (naming the file that could not be written).
        RankError: Under torchrun, if another rank stops answering.
        Interrupted: On SIGTERM.
    """
    with sigterm_interrupts():
        return _run_job(job, overwrite, progress)


def _run_job(job: FolderJob, overwrite: bool, progress: bool) -> JobResult:
    from tqdm import tqdm

    from desra_basicsr.image_io import max_image_pixels

    rank, world_size = dist_info()
    max_image_pixels()  # a malformed DESRA_MAX_IMAGE_PIXELS refuses the job here, not each of its items
    check_out_dir(job.out_dir, job.input_dirs)
    job = _normalised(job)
    meta = {'command': job.command, **job.settings}
    if job.weights:
        meta['weights_sha256'] = {role: sha256_file(path) for role, path in sorted(job.weights.items())}
    summary_path = osp.join(job.out_dir, SUMMARY_NAME)
    previous = load_summary(summary_path)
    _refuse_foreign(job, previous)
    kept = _valid_previous(job, previous, meta, overwrite)
    stale = _stale_outputs(job, previous)
    failures = {name: {'status': STATUS_ERROR, 'message': message} for name, message in job.failures.items()}
    os.makedirs(job.out_dir, exist_ok=True)
    group = _Group(world_size)
    try:
        group.barrier()  # every rank has read the previous summary before rank 0 rewrites it
        records: Dict[str, dict] = dict(kept)
        if rank == 0:
            remove_stale_temp_files([job.out_dir] + [osp.dirname(p) for item in job.items for p in item.outputs])
            _remove_stale(job, previous, stale)
            records.update(failures)
            _write_summary(summary_path, meta, records)
            for message in job.failures.values():
                print(f'error: {message}', file=sys.stderr)
        group.barrier()
        result = JobResult(job.out_dir, {}, failed=len(failures) if rank == 0 else 0)
        mine = list(job.items) if job.collective else shard(job.items, rank, world_size)
        result.skipped = sum(1 for item in mine if item.name in kept)
        todo = [item for item in mine if item.name not in kept]
        label = job.desc or job.command
        label = label if world_size == 1 else f'{label} [rank {rank}/{world_size}]'
        last_write = time.monotonic()
        try:
            for item in tqdm(todo, desc=label, unit='file', dynamic_ncols=True, disable=not progress):
                try:
                    records[item.name] = _done_record(job, item, job.process(item) or {})
                    result.done += 1
                except Exception as err:  # noqa: B902  (per-item capture is this function's purpose)
                    if isinstance(err, OSError) and err.errno in NO_SPACE:
                        raise DesraInputError(f'{err.filename or item.name}: cannot write ({err.strerror}); the '
                                              'outputs finished so far are kept: make room, then run the same command '
                                              'again to resume') from err
                    records[item.name] = {'status': STATUS_ERROR, 'message': _message(err)}
                    result.failed += 1
                    tqdm.write(f'error: {_message(err)}', file=sys.stderr)
                if rank == 0 and time.monotonic() - last_write >= SUMMARY_INTERVAL:
                    _write_summary(summary_path, meta, records)
                    last_write = time.monotonic()
        except BaseException:
            if rank == 0:
                try:
                    _write_summary(summary_path, meta, records)
                except DesraInputError as err:
                    notice(str(err))
            raise
        merged: Dict[str, dict] = {}
        parts = group.gather(records)
        for part in reversed(parts) if job.collective else parts:  # collective: rank 0's records last, so they win
            merged.update(part)
    finally:
        group.close()
    if rank != 0:
        result.summary = {'meta': meta, 'counts': _counts(records), 'items': records}
        return result
    result.summary = _write_summary(summary_path, meta, merged)
    return result


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Inside, SIGTERM raises :class:`Interrupted` (a ``KeyboardInterrupt``), so a job saves what it finished
    exactly as on Ctrl-C; the previous handler is restored afterwards. Outside the main thread signals are left
    alone.

    Yields:
        None
    """

    def interrupt(signum, frame):
        raise Interrupted(signum)

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
