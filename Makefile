# `make train` installs everything into .venv and trains the default model on MNIST;
# `make test` runs the test suite. ARGS passes Hydra overrides: make train ARGS="model=cnn_deep".

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch/torchvision pair the project is tested with; override for another build.
TORCH ?= torch==2.14.1 torchvision==0.29.1
ARGS ?=
PYTEST_ARGS ?=
# make bench BENCH_ARGS="--rounds 5 --setups 000 003"
BENCH_ARGS ?=
# make reproduce REPRO_SEEDS=3: every preset with 3 seeds (seed, seed+1, seed+2), mean ± std.
REPRO_SEEDS ?= 1
REPRO_PRESETS ?= seed000_mlp_bn,seed001_mlp_dropout,seed002_mlp_sigmoid,seed003_cnn,seed003_cnn_deep,seed004_mlp_bn_dropout,tuned_cnn,tuned_cnn_deep
REPRO_DIR := outputs/reproduce/runs/$(shell date +%Y-%m-%d_%H-%M-%S)

.PHONY: install train test lint bench reproduce clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

train: install
	$(BIN)/python train.py $(ARGS)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# One Hydra sweep over the presets; each run keeps its own folder under $(REPRO_DIR).
# No progress bars: eight runs' bars would bury the results in the log.
reproduce: install
	$(BIN)/python train.py -m experiment=$(REPRO_PRESETS) \
		"replicate=range(0,$(REPRO_SEEDS))" hydra.sweep.dir=$(REPRO_DIR) \
		++trainer.enable_progress_bar=false $(ARGS)
	$(BIN)/python -m mnistlab.reproduce $(REPRO_DIR) --out outputs/reproduce \
		--command "make reproduce REPRO_SEEDS=$(REPRO_SEEDS)"

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache src/*.egg-info
