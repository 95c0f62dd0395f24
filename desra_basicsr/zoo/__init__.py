"""The artifact zoo: images with artifacts and their masks, for training the artifact localiser and the restorer.

:mod:`desra_basicsr.zoo.synthetic` paints synthetic artifacts of named classes (noise-like texture, periodic grids,
halos and ringing, colour blotches, pasted texture, a mild tone perturbation) into random regions of clean photos,
with exact masks (docs: "Artifact zoo"). :mod:`desra_basicsr.zoo.rain` adds synthetic rain streaks to clean photos
(docs: "Deraining"). The functions work on numpy arrays and import neither BasicSR nor mmseg.
"""
from dataclasses import asdict, dataclass
from typing import Dict

#: Region shapes of a synthetic artifact (``'random'`` draws one of them); here, so that the command's parser needs
#: no numpy.
SHAPES = ('rectangle', 'ellipse', 'blob')


@dataclass(frozen=True)
class RainParams:
    """The controls of the rain model (:mod:`desra_basicsr.zoo.rain`); the defaults give Rain100L-like light rain.

    Here, with no numpy, so that the settings of ``desra zoo rain`` take their defaults from it.

    Attributes:
        angle (float): Tilt from the vertical, degrees.
        length (float): Streak length, pixels.
        density (float): Fraction of pixels that start a drop.
        blur (float): Gaussian blur of the drops, pixels (0: none).
        intensity (float): Brightness of a streak's core, in (0, 1].
    """
    angle: float = 20.0
    length: float = 20.0
    density: float = 0.001
    blur: float = 0.8
    intensity: float = 0.6

    def as_dict(self) -> Dict[str, float]:
        """The parameters rounded for a summary file.

        Returns:
            dict[str, float]: Name -> value.
        """
        return {name: round(float(value), 6) for name, value in asdict(self).items()}
