"""The progress record of ``desra loop``: ``OUT/loop_state.json``, rewritten atomically after every stage.

A stage of a round is run once: its record (what it found, decided or wrote) is saved when it finishes, together
with what it changed in the loop's state (the pool, the images fixed so far, the current model version), in one
atomic write. A loop killed anywhere resumes at the first stage without a record; the stage's own job resumes in
its own folder (:mod:`desra_basicsr.jobs.core`), so finished images are not computed again.

The state also claims ``OUT``: it records the settings that change the results, with the SHA-256 of each file the
loop reads (the fine-tune template, the models' option files and weights: a file changed at the same path changes the
results as much as another path does), and a loop with other settings or other files is refused there (batches may
be added at the end of the list, and the device, the polling and the number of rounds may change). A setting that a
state file of an older version does not record (``tile``, which older versions left to the SR stages' own records,
and these still refuse a change; the files' SHA-256) is taken from the resumed loop and recorded.
"""
import json
import os
import os.path as osp
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.jobs.core import sha256_file
from desra_basicsr.utils import atomic_write_path

#: Name of the state file in ``OUT``.
STATE_FILE = 'loop_state.json'
#: The recorded setting holding the SHA-256 of each file the loop reads (role -> hex digest).
DIGESTS = 'sha256'
#: A stage's effect on the state: ``(state data, the stage's record) -> None``.
Apply = Callable[[Dict[str, Any], Dict[str, Any]], None]


class LoopState:
    """``OUT/loop_state.json`` (see the module docstring).

    Args:
        out (str): The loop's output folder.
        settings (dict): The settings that change the results (JSON-serialisable).
        batches (list[str]): The batch folders given (list mode; empty when watching a folder).
        files (Mapping[str, str] | None): The files whose contents change the results, by role (e.g.
            ``{'template': path}``); their SHA-256 is recorded in the settings under :data:`DIGESTS`.

    Raises:
        DesraSettingsError: When ``OUT`` holds a loop with other settings, other files or other batches.
    """

    def __init__(self, out: str, settings: Dict[str, Any], batches: List[str],
                 files: Optional[Mapping[str, str]] = None) -> None:
        self.path = osp.join(out, STATE_FILE)
        files = dict(files or {})
        if files:
            settings = dict(settings, **{DIGESTS: {role: sha256_file(path) for role, path in sorted(files.items())}})
        self.data: Dict[str, Any] = {
            'settings': settings,
            'batches': list(batches),
            'rounds': {},
            'pool': [],
            'fixed': [],
            'versions': ['v0'],
            'current': 'v0',
            'taken': [],
        }
        if osp.isfile(self.path):
            with open(self.path, 'r', encoding='utf-8') as f:
                previous = json.load(f)
            self._check_claim(previous, settings, batches, files)
            self.data = previous
            self.data['settings'] = dict(settings)
            self.data['batches'] = list(batches)

    def _check_claim(self, previous: Dict[str, Any], settings: Dict[str, Any], batches: List[str],
                     files: Mapping[str, str]) -> None:
        old = previous.get('settings', {})
        changed = sorted(k for k in old if k != DIGESTS and (k not in settings or old[k] != settings[k]))
        digests = settings.get(DIGESTS, {})
        for role, digest in sorted((old.get(DIGESTS) or {}).items()):  # absent from the state files of older versions
            if digests.get(role) != digest and role not in changed:
                changed.append(f'the contents of {role} {files[role]}' if role in files else role)
        if changed:
            raise DesraSettingsError(f'{self.path}: this folder was written with other settings '
                                     f'({", ".join(changed)}); run it with the same settings and files to resume, '
                                     'or use another --out')
        done = previous.get('batches', [])
        if batches[:len(done)] != done:
            raise DesraSettingsError(f'{self.path}: this folder holds a loop over the batches {", ".join(done)}; '
                                     'resume with those (new batches may follow them), or choose another --out')

    def save(self) -> None:
        """Write the state atomically."""
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        with atomic_write_path(self.path) as tmp:
            with open(tmp, 'w', encoding='utf-8') as f:
                json.dump(self.data, f, indent=1)

    def stages(self, number: int) -> Dict[str, Any]:
        """The records of one round's finished stages (round 0: the set-up)."""
        return self.data['rounds'].setdefault(str(number), {})

    def record(self, number: int, name: str) -> Optional[Dict[str, Any]]:
        """The record of one finished stage, or None."""
        return self.data['rounds'].get(str(number), {}).get(name)

    def stage(self, number: int, name: str, work: Callable[[], Dict[str, Any]], apply: Optional[Apply] = None
              ) -> Dict[str, Any]:
        """Run a stage once: its record when it finished before, else run it and save its record and effect.

        Args:
            number (int): The round (0: the set-up).
            name (str): The stage.
            work (Callable): Runs the stage; returns its record (JSON-serialisable).
            apply (Apply | None): Changes the state with the record (saved in the same write).

        Returns:
            dict: The stage's record, with the ``seconds`` it took.
        """
        found = self.record(number, name)
        if found is not None:
            return found
        start = time.time()
        found = dict(work(), seconds=round(time.time() - start, 1))
        if apply is not None:
            apply(self.data, found)
        self.stages(number)[name] = found
        self.save()
        return found

    def rounds(self) -> List[int]:
        """The rounds started so far, in order."""
        return sorted(int(k) for k, v in self.data['rounds'].items() if int(k) > 0 and 'start' in v)
