"""``desra_basicsr/train.py`` where every training mask on rank 1 is empty (rank 0 keeps its artifact masks).

Under DDP this is the case that desynchronised BasicSR's loss reduction when ``l_g_mask_pix`` was logged only on
ranks whose crops held mask pixels.
"""
import os

from desra_basicsr.train import main  # isort:skip  (first: applies the compat fixes BasicSR needs to import)
from desra_basicsr.data.pseudo_gt_paired_dataset import PseudoGTPairedDataset

_getitem = PseudoGTPairedDataset.__getitem__


def _getitem_rank1_empty(self, index: int) -> dict:
    sample = _getitem(self, index)
    if self.phase == 'train' and os.environ.get('RANK') == '1':
        sample['mask'] = sample['mask'] * 0
    return sample


PseudoGTPairedDataset.__getitem__ = _getitem_rank1_empty

if __name__ == '__main__':
    main()
