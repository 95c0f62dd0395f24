"""The progress bar of the jobs that read all their files in one pass (evaluate, compare, calibrate, report).

The folder jobs show theirs through :func:`desra_basicsr.jobs.core.run_job`; both follow a job's ``progress``
setting.
"""
import sys
from typing import Callable, Iterable


def progress_bar(enabled: bool, desc: str, unit: str = 'img') -> Callable[[Iterable], Iterable]:
    """A tqdm wrapper of an iterable on stderr (the iterable itself when the bar is off).

    Args:
        enabled (bool): The job's ``progress`` setting.
        desc (str): Bar label.
        unit (str): Unit name.

    Returns:
        Callable: Iterable -> iterable that shows the bar.
    """

    def wrap(iterable: Iterable) -> Iterable:
        from tqdm import tqdm
        return tqdm(iterable, desc=desc, unit=unit, file=sys.stderr, disable=not enabled)

    return wrap
