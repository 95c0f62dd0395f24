"""``desra_basicsr/train.py`` plus one test-only model that registers from outside the plugin.

``RankDumpSRGANModel`` is BasicSR's SRGANModel that, whenever it saves, also writes the generator weights of
*every* rank to ``experiments/<name>/rank_dump/net_g_rank<R>.pth`` (BasicSR saves on rank 0 only), so a test
can check that DDP kept the ranks identical.
"""
import os
import os.path as osp

import torch

from desra_basicsr.train import main  # isort:skip  (first: applies the compat fixes BasicSR needs to import)
from basicsr.models.srgan_model import SRGANModel
from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class RankDumpSRGANModel(SRGANModel):

    def save(self, epoch, current_iter):
        super().save(epoch, current_iter)
        folder = osp.join(self.opt['path']['experiments_root'], 'rank_dump')
        os.makedirs(folder, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.get_bare_model(self.net_g).state_dict().items()}
        torch.save(state, osp.join(folder, f'net_g_rank{self.opt["rank"]}.pth'))


if __name__ == '__main__':
    main()
