"""Typed per-item records of the folder jobs: what ``summary.json`` holds for each finished item.

Each folder job defines a frozen dataclass deriving from :class:`ItemRecord` (e.g.
:class:`desra_basicsr.jobs.detect.DetectRecord`); its ``process`` returns ``record.fields()``, and callers read the
finished items of a result back as typed records instead of dictionaries::

    from desra_basicsr.jobs.detect import DetectRecord
    records = DetectRecord.done(result)
    print(records['chelsea'].artifact_fraction)
"""
import dataclasses
from typing import Any, Dict, Type, TypeVar

from desra_basicsr.jobs.core import STATUS_DONE, JobResult

R = TypeVar('R', bound='ItemRecord')


@dataclasses.dataclass(frozen=True)
class ItemRecord:
    """Base of a folder job's record of one finished item (the fields are the item's JSON fields)."""

    def fields(self) -> Dict[str, Any]:
        """The JSON fields of the record (fields that are None are left out).

        Returns:
            dict: Field name -> value.
        """
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def done(cls: Type[R], result: JobResult) -> Dict[str, R]:
        """The records of the items a job finished (this run's and those kept from an earlier run).

        Args:
            result (JobResult): The job's result.

        Returns:
            dict: Item name -> record, for the items whose status is done.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        return {
            item: cls(**{k: v for k, v in record.items() if k in names})
            for item, record in result.items.items() if record.get('status') == STATUS_DONE
        }
