# `make train` installs everything into .venv and trains the default model on MNIST;
# `make test` runs the test suite. ARGS passes Hydra overrides: make train ARGS="model=cnn_deep".

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch/torchvision pair the project is tested with; override for another build.
TORCH ?= torch==2.14.1 torchvision==0.29.1
ARGS ?=
PYTEST_ARGS ?=
# make bench BENCH_ARGS="--rounds 5 --setups tutorial000_mlp_bn tutorial003_cnn"
BENCH_ARGS ?=
# make reproduce REPRO_SEEDS=3: every preset with 3 seeds (seed, seed+1, seed+2), mean ± std.
# Every preset in conf/experiment/ takes part; REPRO_PRESETS="tuned_cnn,tuned_cnn_deep" picks some.
REPRO_SEEDS ?= 1
REPRO_PRESETS ?= glob(*)
REPRO_OUT ?= outputs/reproduce
REPRO_STAMP := $(shell date +%Y-%m-%d_%H-%M-%S)
REPRO_DIR ?= $(REPRO_OUT)/runs/$(REPRO_STAMP)

.PHONY: install data train test test-fast test-cluster lint bench bench-busy bench-phases bench-patches gpu-bundle reproduce compare ensembles \
	screenshots demo clean clean-outputs cluster-up cluster-down cluster-status

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev,sweeps,demo,export]"
	touch $@

# Obtain and verify MNIST in $MNISTLAB_DATA_DIR (default data/), as train.py would.
MNIST_RAW := $(or $(MNISTLAB_DATA_DIR),data)/MNIST/raw
data: install
	$(BIN)/python -m mnistlab.data

train: install
	$(BIN)/python train.py $(ARGS)

# Two pytest-xdist workers (one per core here; TEST_WORKERS=auto for every core), each taking
# the next test when it is free (worksteal), so that long end-to-end tests do not queue.
TEST_WORKERS ?= 2
# MNIST is obtained first when a file is missing (the tests check every file's md5 themselves).
MNIST_FILES := train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
	t10k-labels-idx1-ubyte
test: install
	@for f in $(MNIST_FILES); do [ -f "$(MNIST_RAW)/$$f" ] || missing=1; done; \
	if [ -n "$$missing" ]; then $(BIN)/python -m mnistlab.data; fi
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not cluster" $(PYTEST_ARGS)

# The tests on the local SLURM cluster and a PostgreSQL server (make cluster-up first).
test-cluster: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m cluster $(PYTEST_ARGS)

# The quick loop: the unit tests, without the end-to-end runs of the command line and the
# slower trainings (marked slow). It expects the data in place (make data, or make test once).
test-fast: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not slow" $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench.run --page docs/performance.md $(BENCH_ARGS)
	$(BIN)/python -m bench.sweeps

# The default command alone and beside one busy process, threads=null (torch's default) against
# threads=auto: make bench-busy BUSY_ARGS="--rounds 3".
BUSY_ARGS ?=
bench-busy: install
	$(BIN)/python -m bench.busy --page docs/performance.md $(BUSY_ARGS)

# Where the seconds of `python train.py` go (imports, set-up, epochs, validation, testing,
# writing), from the command to its exit: make bench-phases PHASES_ARGS="--compare <commit>"
# for a before/after table, interleaved.
PHASES_ARGS ?=
bench-phases: install
	$(BIN)/python -m bench.phases --page docs/performance.md $(PHASES_ARGS)

# What each speed patch of mnistlab/internals.py saves, per preset: epochs with all patches
# against epochs with one switched off, interleaved; the table goes into docs/performance.md.
PATCHES_ARGS ?=
bench-patches: install
	$(BIN)/python -m bench.patches --page docs/performance.md $(PATCHES_ARGS)

# What the GPU bench (bench/gpu_run.sh) needs on a GPU machine that has torch and Lightning but
# reaches no network: the wheels of Hydra, OmegaConf (the versions installed here) and ANTLR,
# and MNIST gzip-compressed (11 MB), in $(GPU_BUNDLE), which git ignores.
GPU_BUNDLE ?= .gpu
installed = "$(1)==$$($(BIN)/python -c 'from importlib.metadata import version; print(version("$(1)"))')"
gpu-bundle: data
	rm -rf $(GPU_BUNDLE) && mkdir -p $(GPU_BUNDLE)/wheels $(GPU_BUNDLE)/MNIST
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: -d $(GPU_BUNDLE)/wheels \
		$(call installed,hydra-core) $(call installed,omegaconf)
	$(BIN)/python -m pip wheel --quiet --no-deps -w $(GPU_BUNDLE)/wheels \
		$(call installed,antlr4-python3-runtime)
	for f in $(MNIST_RAW)/*-ubyte; do gzip -9c $$f > $(GPU_BUNDLE)/MNIST/$$(basename $$f).gz; done
	du -sh $(GPU_BUNDLE)

# One Hydra sweep over the presets; each run keeps its own folder under $(REPRO_DIR).
# No progress bars: eight runs' bars would bury the results in the log.
# The sweep writes its summary into $(REPRO_DIR); a copy with the command goes to $(REPRO_OUT),
# also when a preset failed (make then exits non-zero).
reproduce: install
	$(BIN)/python train.py -m "experiment=$(REPRO_PRESETS)" \
		"replicate=range(0,$(REPRO_SEEDS))" hydra.sweep.dir=$(REPRO_DIR) \
		trainer.enable_progress_bar=false $(ARGS); status=$$?; \
	$(BIN)/python -m mnistlab.summary $(REPRO_DIR) --out $(REPRO_OUT) --page docs/results.md --page README.md \
		--columns "experiment,status,tutorial reported,n,best val acc,test acc,epochs,s/epoch" \
		--command "make reproduce REPRO_SEEDS=$(REPRO_SEEDS) REPRO_PRESETS=$(REPRO_PRESETS)$(if $(ARGS), ARGS='$(ARGS)')" \
		> /dev/null && exit $$status

# Ensembles of the tuned presets: one sweep of ENSEMBLE_SEEDS seeds each, then each sweep's first 3
# and 5 jobs alone and as ensembles (python -m mnistlab.ensemble), into docs/results.md.
ENSEMBLE_SEEDS ?= 5
ENSEMBLE_PRESETS ?= tuned_cnn_deep tuned_cnn
ENSEMBLE_DIR ?= outputs/ensembles
ensembles: install
	for preset in $(ENSEMBLE_PRESETS); do \
		$(BIN)/python train.py -m experiment=$$preset "replicate=range(0,$(ENSEMBLE_SEEDS))" \
			hydra.sweep.dir=$(ENSEMBLE_DIR)/$$preset trainer.enable_progress_bar=false $(ARGS) \
			|| exit 1; \
	done
	$(BIN)/python -m mnistlab.ensemble $(foreach p,$(ENSEMBLE_PRESETS),$(ENSEMBLE_DIR)/$(p)) \
		--out $(ENSEMBLE_DIR) --page docs/results.md \
		--command "make ensembles$(if $(ARGS), ARGS='$(ARGS)')"

# Tutorial 004's question: which initialisation and optimizer train its network best? Its
# 784-512-256-10 BatchNorm + Dropout MLP at batch 32, each optimizer at its own file's constant
# learning rate (conf/optimizer/), 3 inits x 8 optimizers x COMPARE_SEEDS seeds, jobs side by side.
COMPARE_SEEDS ?= 2
COMPARE_EPOCHS ?= 3
COMPARE_OUT ?= outputs/compare
COMPARE_DIR ?= $(COMPARE_OUT)/runs/$(REPRO_STAMP)
compare: install
	$(BIN)/python train.py -m model=mlp_bn_dropout data.batch_size=32 init=tutorial \
		init.scheme=lecun_normal,xavier_uniform,kaiming_uniform \
		optimizer=sgd,momentum,nesterov,adagrad,rmsprop,adadelta,adam,radam \
		"replicate=range(0,$(COMPARE_SEEDS))" trainer.max_epochs=$(COMPARE_EPOCHS) '~scheduler' \
		hydra/launcher=joblib hydra.sweep.dir=$(COMPARE_DIR) trainer.enable_progress_bar=false \
		callbacks.input_images=null $(ARGS); status=$$?; \
	$(BIN)/python -m mnistlab.summary $(COMPARE_DIR) --out $(COMPARE_OUT) --page docs/results.md \
		--columns "init.scheme,optimizer,n,best val acc,test acc,s/epoch" --command "make compare COMPARE_SEEDS=$(COMPARE_SEEDS) COMPARE_EPOCHS=$(COMPARE_EPOCHS)" \
		> /dev/null && exit $$status

# The docs' pictures: a small sweep in a real tensorboard, and the demo page with a drawn 7
# (newest checkpoint under outputs/), in headless Chromium (apt-get install chromium);
# writes docs/tensorboard_*.png and docs/demo.png.
screenshots: install
	PYTHONPATH=. $(BIN)/python docs/screenshots.py
	PYTHONPATH=. $(BIN)/python docs/demo_screenshot.py

# The page to draw a digit on: make demo CKPT=outputs/runs/<date>/<time>/checkpoints/epoch_NNN.ckpt
# (without CKPT: the newest best checkpoint under outputs/).
CKPT ?=
demo: install
	$(BIN)/python demo.py $(if $(CKPT),ckpt_path=$(CKPT))

lint: install
	$(BIN)/ruff check .

# The environment and caches; never outputs/, which holds the runs (your results).
# A real single-node SLURM cluster with accounting on this machine (root; Debian's slurm-wlm,
# slurmdbd, munge and mariadb-server): the cluster tests run on it, and so does
# `python train.py -m hydra/launcher=slurm ...`. See docs/clusters.md.
cluster-up:
	scripts/slurm-local.sh up

cluster-down:
	scripts/slurm-local.sh down

cluster-status:
	scripts/slurm-local.sh status

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info

# Deletes every run, sweep, evaluation and table under outputs/: only when you mean it.
clean-outputs:
	rm -rf outputs
