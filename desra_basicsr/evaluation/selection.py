"""Choosing the length of a DeSRA fine-tune: which saved checkpoint to keep.

Too short a fine-tune removes nothing; too long a one paints new artifacts (docs/demo.md, "The demo's fine-tune
recipe"; the paper fixes 1000 iterations, section 4.1). Each checkpoint saved along the run is scored on a
validation split of the user's own artifact images that the fine-tune never trained on
(:mod:`desra_basicsr.jobs.checkpoint_scores`): the detected artifact area after fine-tuning, the addition rate
(images that gained artifacts outside the before-masks), the removal rate and the GAN-SR detail kept outside the
before-masks (:mod:`.detail`).

The stated rule (:data:`DEFAULT_RULE`): a checkpoint is *admitted* when its addition rate is at most
``max_addition`` (0 %) and its detail at least ``min_detail`` (0.9). Among the admitted ones, find the smallest
detected area; a checkpoint *ties* with it when it is admitted and its area is at most ``tie_area`` (0.05)
percentage points larger. Walking the checkpoints in the order of their iterations, start at the earliest tie and
keep going while the next checkpoint ties too: the last checkpoint of that run (the *plateau*) is kept. A validation
split of one or two images often scores several checkpoints at 0 % area; taking the earliest of them under-trains,
while a later checkpoint that is no worse on any figure the rule reads trains further. The run must be unbroken, so
a later tie after a worse checkpoint (the GAN fine-tune's scores swing from one checkpoint to the next) is not
taken. When no checkpoint is admitted, keep the one with the fewest additions, then the smallest area, then the
earliest, and say so. With no rule (``None``) the last checkpoint is kept: the paper's fixed length.

This module is pure Python (no BasicSR, torch or mmseg), so the rule is cheap to test and to reuse.
"""
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple


@dataclass(frozen=True)
class CheckpointScore:
    """The validation figures of one checkpoint.

    Attributes:
        iter (int): Training iteration of the checkpoint.
        area (float): Mean detected artifact area after fine-tuning, percent of the image.
        addition_rate (float): Percent of the images that gained artifacts outside their before-mask.
        removal_rate (float): Percent of the before-regions with no artifact pixel left.
        detail (float | None): GAN-SR detail kept outside the before-masks (mean ``std_ratio``; 1.0 = all of it);
            None when no image has pixels outside its mask.
    """
    iter: int  # noqa: A003 (the figure's name in every table)
    area: float
    addition_rate: float
    removal_rate: float
    detail: Optional[float]


@dataclass(frozen=True)
class SelectionRule:
    """The conditions a checkpoint must meet; among those that do, the last of the plateau of the smallest area.

    Attributes:
        max_addition (float): Largest addition rate, percent.
        min_detail (float): Smallest detail kept outside the before-masks.
        tie_area (float): Largest excess over the smallest admitted area (percentage points) that still ties.
    """
    max_addition: float = 0.0
    min_detail: float = 0.9
    tie_area: float = 0.05

    def admits(self, score: CheckpointScore) -> bool:
        """Whether a checkpoint meets the rule (an undefined detail never does).

        Args:
            score (CheckpointScore): The checkpoint's figures.

        Returns:
            bool: True when it qualifies.
        """
        detail = score.detail
        return (score.addition_rate <= self.max_addition and detail is not None and not math.isnan(detail)
                and detail >= self.min_detail)

    def describe(self) -> str:
        """The rule in words."""
        return f'addition rate <= {self.max_addition:g} % and detail >= {self.min_detail:g}'


#: The stated rule: no additions, detail at least 0.9, then the last of the plateau of the smallest area.
DEFAULT_RULE = SelectionRule()


def choose_checkpoint(scores: Sequence[CheckpointScore],
                      rule: Optional[SelectionRule] = DEFAULT_RULE) -> Tuple[CheckpointScore, str]:
    """Pick the checkpoint to keep (see the module docstring); the choice does not depend on the table's order.

    Args:
        scores (Sequence[CheckpointScore]): One row per checkpoint, iterations distinct.
        rule (SelectionRule | None): The rule; None: fixed length (the last checkpoint).

    Returns:
        tuple[CheckpointScore, str]: The chosen row and one line saying why.

    Raises:
        ValueError: If the table is empty or names an iteration twice.
    """
    if not scores:
        raise ValueError('no checkpoint to choose from')
    if len({s.iter for s in scores}) != len(scores):
        raise ValueError('the score table names an iteration twice')
    if rule is None:
        last = max(scores, key=lambda s: s.iter)
        return last, f'fixed length: the last checkpoint, iteration {last.iter}'
    admitted = [s for s in scores if rule.admits(s)]
    if admitted:
        smallest = min(s.area for s in admitted)
        ordered = sorted(scores, key=lambda s: s.iter)
        ties = [rule.admits(s) and s.area <= smallest + rule.tie_area for s in ordered]
        start = end = ties.index(True)
        while end + 1 < len(ordered) and ties[end + 1]:
            end += 1
        best = ordered[end]
        return best, (f'iteration {best.iter}: the last of {end - start + 1} consecutive checkpoint(s) from iteration '
                      f'{ordered[start].iter} within {rule.tie_area:g} of the smallest detected area '
                      f'({smallest:.2f} %) of the {len(admitted)} of {len(scores)} checkpoint(s) with '
                      f'{rule.describe()}')
    best = min(scores, key=lambda s: (s.addition_rate, s.area, s.iter))
    return best, (f'iteration {best.iter}: no checkpoint has {rule.describe()}; fell back to the fewest additions '
                  f'({best.addition_rate:.2f} %), then the smallest area ({best.area:.2f} %)')
