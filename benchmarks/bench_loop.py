"""``desra loop`` on the demo corpus as a stream of batches (not part of CI): the chosen length against a fixed one.

The corpus's fine-tune set (``demo_data/finetune_lr``, 16 photos) arrives in ``--batches`` batches (photo ``i`` of
the sorted list goes to batch ``i mod N``); the held-out set (``demo_data/heldout_lr``) is the loop's ``heldout``,
scored after every round and never trained on. Every photo of a batch is trained on (the demo's recipe,
``train_clean``) except the ``--holdback`` share of the pool's photos without artifacts, held out in the validation
split with either length; from ``options/demo_finetune_desra.yml``; a round fine-tunes once the pool holds
``--min-pool`` photos with artifacts. For each seed, two loops over the same stream:

* ``chosen``: checkpoints every ``--checkpoint-every`` iterations up to ``--iters``, the rule of
  :func:`desra_basicsr.evaluation.selection.choose_checkpoint` on the validation split of each round's pool;
* ``fixed``: ``--fixed-iters`` iterations (the demo's 500).

Per round it prints the held-out removal, addition, area and detail of the round's fine-tuned model (and whether
it was accepted; a round without a fine-tune shows the current model's), the forgetting check on the photos fixed
in earlier rounds (addition rate, area before -> after), the iterations chosen and the round's wall time; then,
per loop, the held-out figures of the current model after the last round against the targets: removal >= 85 %,
addition <= 6 %, detail >= 0.93, and no accepted round that added artifacts on an earlier batch. Every loop is
resumable (its own folder under ``--out``); the stream under ``OUT/stream`` records its settings (``stream.json``:
batches, crop, photos), and a run with others is refused: choose another ``--out``.

Usage (from the repository root, after ``make setup``)::

    .venv/bin/python -m benchmarks.bench_loop --seeds 0 1 2
    .venv/bin/python -m benchmarks.bench_loop --seeds 0 --crop 48 --iters 4 --checkpoint-every 2 --fixed-iters 4
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import Any, Dict, List, Optional

import cv2

from benchmarks.common import check_counts, run_main, write_json
from desra_basicsr.demo import DEMO_DATA, FINETUNE_TEMPLATE, GAN_OPT, MSE_OPT, PRETRAINED
from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.image_io import list_images
from desra_basicsr.jobs.loop import LoopResult, LoopSettings, run
from desra_basicsr.utils import atomic_write_path

TARGETS = {'removal_rate': ('>=', 85.0), 'addition_rate': ('<=', 6.0), 'std_ratio': ('>=', 0.93)}
#: The record of the stream's settings in ``OUT/stream``: a resumed run must make the same stream.
STREAM_RECORD = 'stream.json'
ROW = '{:<8}{:>5}{:>6}  {:<13}{:>9}{:>10}{:>12}{:>7}{:>8}  {:<24}{:>7}{:>9}'


def write_photo(src: str, dst: str, crop: int) -> None:
    """Link a photo into a stream folder, or write its central ``crop`` x ``crop`` crop (atomically)."""
    if osp.exists(dst):
        return
    if not crop:
        os.link(src, dst)
        return
    img = cv2.imread(src)
    top, left = max(0, (img.shape[0] - crop) // 2), max(0, (img.shape[1] - crop) // 2)
    with atomic_write_path(dst) as tmp:
        cv2.imwrite(tmp, img[top:top + crop, left:left + crop])


def stream_settings(count: int, crop: int) -> Dict[str, Any]:
    """What shapes the stream: the batch count, the crop and the photos of the two sets (``STREAM_RECORD``)."""
    return {'batches': count, 'crop': crop, 'finetune': list_images(osp.join(DEMO_DATA, 'finetune_lr')),
            'heldout': list_images(osp.join(DEMO_DATA, 'heldout_lr'))}


def claim_stream(root: str, settings: Dict[str, Any]) -> None:
    """Record ``settings`` in ``root/STREAM_RECORD`` before any photo is written, or refuse a stream made otherwise.

    Args:
        root (str): The stream folder (``OUT/stream``).
        settings (dict): :func:`stream_settings`.

    Raises:
        DesraSettingsError: If ``root`` holds a stream of other settings, or files but no record.
    """
    path = osp.join(root, STREAM_RECORD)
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            old = json.load(f)
        changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        if changed:
            raise DesraSettingsError(f'{path}: this stream was made with other settings ({", ".join(changed)}); run '
                                     'with the same settings to resume, or choose another --out')
        return
    if osp.isdir(root) and os.listdir(root):
        raise DesraSettingsError(f'{root}: holds a stream without {STREAM_RECORD}, so its settings are unknown; '
                                 'choose another --out')
    write_json(path, settings)


def make_stream(out: str, count: int, crop: int) -> Dict[str, Any]:
    """The batches of the fine-tune set and the held-out folder under ``out/stream`` (see :func:`claim_stream`)."""
    root = osp.join(out, 'stream')
    settings = stream_settings(count, crop)
    claim_stream(root, settings)
    photos = settings['finetune']
    batches = []
    for index in range(count):
        folder = osp.join(root, f'batch{index + 1}')
        os.makedirs(folder, exist_ok=True)
        for name in photos[index::count]:
            write_photo(osp.join(DEMO_DATA, 'finetune_lr', name), osp.join(folder, name), crop)
        batches.append(folder)
    heldout = osp.join(root, 'heldout')
    os.makedirs(heldout, exist_ok=True)
    for name in settings['heldout']:
        write_photo(osp.join(DEMO_DATA, 'heldout_lr', name), osp.join(heldout, name), crop)
    return {'batches': tuple(batches), 'heldout': heldout}


def check_args(args: argparse.Namespace) -> None:
    """Refuse unusable counts before any work.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Raises:
        DesraSettingsError: For a count below 1, a negative crop, or more batches than fine-tune photos.
    """
    check_counts(args, '--batches', '--iters', '--checkpoint-every', '--fixed-iters', '--min-pool')
    check_counts(args, '--crop', least=0)
    photos = len(list_images(osp.join(DEMO_DATA, 'finetune_lr')))
    if args.batches > photos:
        raise DesraSettingsError(f'--batches {args.batches}: the fine-tune set has {photos} photos, one batch needs '
                                 'at least one')


def round_figures(record: Dict[str, Any], current: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """One round's figures; ``current`` is the held-out row of the current model before the round."""
    row: Dict[str, Any] = {'round': record['round'], 'seconds': round(sum(
        v['seconds'] for v in record.values() if isinstance(v, dict) and 'seconds' in v), 1)}
    if 'skip' in record:
        return dict(row, finetuned=False, accepted=False, heldout=current, current=current)
    held = record['heldout']
    heldout = dict(held['summary'], std_ratio=held['detail']['std_ratio'])
    forgetting = record['forgetting'].get('figures')
    accepted = record['accept']['accepted']
    return dict(row, finetuned=True, accepted=accepted, iterations=record['choose']['iteration'], heldout=heldout,
                current=heldout if accepted else current,
                forgetting=forgetting and forgetting['summary'])


def loop_figures(result: LoopResult) -> List[Dict[str, Any]]:
    """Every round's figures of one loop."""
    rows, current = [], None
    for record in result.rounds:
        rows.append(round_figures(record, current))
        current = rows[-1]['current']
    return rows


def missed(rows: List[Dict[str, Any]]) -> List[str]:
    """The targets a loop misses (see the module docstring)."""
    final = rows[-1]['current']
    if final is None:
        return ['no model was accepted']
    misses = []
    for key, (op, bound) in TARGETS.items():
        value = final[key]
        if value is None or not (value >= bound if op == '>=' else value <= bound):
            misses.append(f'{key} {value} (target {op} {bound:g})')
    for row in rows:
        if row['accepted'] and row.get('forgetting') and row['forgetting']['addition_rate'] > 0:
            misses.append(f'round {row["round"]} was accepted with additions on an earlier batch')
    return misses


def print_rows(mode: str, seed: int, rows: List[Dict[str, Any]]) -> None:
    """The per-round lines of one loop."""
    for row in rows:
        h, f = row['heldout'], row.get('forgetting')
        forgetting = f'{f["addition_rate"]:.1f} % / {f["area_before"]:.2f}->{f["area_after"]:.2f}' if f else '-'
        if h is None:
            print(ROW.format(mode, seed, row['round'], 'no fine-tune', '', '', '', '', '', '-', '-', row['seconds']))
            continue
        label = ('accepted' if row['accepted'] else 'rejected') if row['finetuned'] else 'no fine-tune'
        print(ROW.format(mode, seed, row['round'], label, f'{h["removal_rate"]:.1f}',
                         f'{h["addition_rate"]:.1f}', f'{h["area_before"]:.2f}', f'{h["area_after"]:.2f}',
                         f'{h["std_ratio"]:.3f}' if h['std_ratio'] is not None else 'n/a', forgetting,
                         row.get('iterations', '-'), row['seconds']))


def main() -> None:
    """Run the loops and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument('--modes', nargs='+', choices=('chosen', 'fixed'), default=['chosen', 'fixed'])
    parser.add_argument('--batches', type=int, default=3, help='batches the fine-tune set arrives in')
    parser.add_argument('--iters', type=int, default=1000, help='longest fine-tune of the chosen length')
    parser.add_argument('--checkpoint-every', type=int, default=100)
    parser.add_argument('--fixed-iters', type=int, default=500, help='the fixed length (the demo\'s)')
    parser.add_argument('--min-pool', type=int, default=2)
    parser.add_argument('--holdback', type=float, default=0.25,
                        help='share of the pool\'s photos without artifacts held out of the fine-tune (0: none)')
    parser.add_argument('--crop', type=int, default=0, help='central crops of this size (0: whole photos)')
    parser.add_argument('--out', default='results/bench_loop', help='one loop folder per mode and seed')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    check_args(args)

    stream = make_stream(args.out, args.batches, args.crop)
    table: Dict[str, Dict[int, Any]] = {}
    for mode in args.modes:
        for seed in args.seeds:
            start = time.time()
            settings = LoopSettings(
                out=osp.join(args.out, f'{mode}_seed{seed}'), batches=stream['batches'], heldout=stream['heldout'],
                gan_opt=GAN_OPT, gan_weights=osp.join(PRETRAINED, 'demo_gan_x4.pth'),
                netd_weights=osp.join(PRETRAINED, 'demo_gan_x4_netD.pth'), mse_opt=MSE_OPT,
                mse_weights=osp.join(PRETRAINED, 'demo_mse_x4.pth'), template=FINETUNE_TEMPLATE, length=mode,
                iters=args.iters if mode == 'chosen' else args.fixed_iters, checkpoint_every=args.checkpoint_every,
                min_pool=args.min_pool, train_clean=True, holdback=args.holdback, seed=seed, device=args.device)
            result = run(settings, on_round=lambda r: None)
            rows = loop_figures(result)
            table.setdefault(mode, {})[seed] = {'rounds': rows, 'missed': missed(rows), 'current': result.current,
                                                'seconds': round(time.time() - start, 1)}

    print(f'\n=== bench_loop: the fine-tune set in {args.batches} batches, held-out set after every round'
          f'{f" (central {args.crop} px crops)" if args.crop else ""}')
    print('held-out: the round\'s fine-tuned model (removal %, addition %, area % before -> after, detail kept); '
          'earlier: the photos fixed in earlier rounds (addition %, area % before -> after)')
    print(ROW.format('length', 'seed', 'round', 'model', 'removal', 'addition', 'area before', 'after', 'detail',
                     'earlier: addition/area', 'iters', 'seconds'))
    for mode, seeds in table.items():
        for seed, found in seeds.items():
            print_rows(mode, seed, found['rounds'])
    print('\nheld-out set, the current model after the last round, against the targets:')
    for mode, seeds in table.items():
        for seed, found in seeds.items():
            final = found['rounds'][-1]['current']
            figures = (f'removal {final["removal_rate"]:.1f} %, addition {final["addition_rate"]:.1f} %, area '
                       f'{final["area_before"]:.2f} -> {final["area_after"]:.2f} %, detail {final["std_ratio"]:.3f}'
                       if final else 'no model accepted')
            verdict = 'meets every target' if not found['missed'] else 'misses ' + '; '.join(found['missed'])
            print(f'{mode} seed {seed} ({found["current"]}, {found["seconds"]} s): {figures}; {verdict}')
    report = {'settings': vars(args), 'targets': TARGETS, 'loops': table}
    path = osp.join(args.out, 'bench_loop.json')
    write_json(path, report)
    print(f'figures: {path}')


if __name__ == '__main__':
    run_main(main, out_option='--out')
