"""The artifact zoo: images with artifacts and their masks, for training the artifact localiser and the restorer.

:mod:`desra_basicsr.zoo.synthetic` paints synthetic artifacts of named classes (noise-like texture, periodic grids,
halos and ringing, colour blotches, pasted texture, a mild tone perturbation) into random regions of clean photos,
with exact masks (docs: "Artifact zoo"). The functions work on numpy arrays and import neither BasicSR nor mmseg.
"""

#: Region shapes of a synthetic artifact (``'random'`` draws one of them); here, so that the command's parser needs
#: no numpy.
SHAPES = ('rectangle', 'ellipse', 'blob')
