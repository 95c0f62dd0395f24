"""Missing released weights name where users get them, in the words of docs/finetune.md (section 2)."""
import os.path as osp
import re

import pytest

from desra_basicsr.checkpoints import WEIGHT_SOURCES, read_checkpoint, weights_source
from desra_basicsr.errors import DesraInputError
from helpers.paths import REPO_ROOT


def docs_weights_table() -> dict:
    """File name -> "Where to get it" of the weights table in docs/finetune.md, section 2."""
    with open(osp.join(REPO_ROOT, 'docs', 'finetune.md'), 'r') as f:
        section = f.read().split('## 2. Weights', 1)[1].split('\n## ', 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        match = re.match(r'`([^`]+\.pth)`', cells[0]) if len(cells) == 3 else None
        if match:
            rows[match.group(1)] = cells[2]
    return rows


def test_sources_are_the_docs_table():
    table = docs_weights_table()
    assert len(table) == 7 and 'vgg19-dcbb9e9d.pth' in table
    assert WEIGHT_SOURCES == table


@pytest.mark.parametrize('name', sorted(WEIGHT_SOURCES))
def test_missing_released_file_names_its_source(tmp_path, name):
    path = str(tmp_path / 'experiments' / 'pretrained_models' / name)
    with pytest.raises(DesraInputError) as info:
        read_checkpoint(path)
    assert str(info.value) == (f'{path}: checkpoint file not found; get it from {WEIGHT_SOURCES[name]} '
                               '(docs/finetune.md, section 2)')


def test_other_files_get_no_source(tmp_path):
    path = str(tmp_path / 'nope.pth')
    assert weights_source(path) == ''
    with pytest.raises(DesraInputError) as info:
        read_checkpoint(path)
    assert str(info.value) == f'{path}: checkpoint file not found'
