#!/usr/bin/env bash
# The GPU bench on a machine that reaches nothing, from the repository root, with the bundle
# of `make gpu-bundle` beside it (.gpu/): installs the wheels that machine lacks (Hydra,
# OmegaConf, ANTLR) next to its own torch and Lightning, unpacks MNIST (checked by md5 as
# always) and runs bench/gpu.py. The table goes to $OUT (or outputs/bench-gpu).
# Arguments go to bench/gpu.py, e.g. bash bench/gpu_run.sh --setups cnn cnn_deep
set -euo pipefail
bundle=${GPU_BUNDLE:-.gpu}
python=${PYTHON:-python3}
site=$(mktemp -d)
"$python" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
    --target "$site" "$bundle"/wheels/*.whl
export PYTHONPATH="$site:$PWD/src:$PWD" PYTHONUNBUFFERED=1
export MNISTLAB_DATA_DIR=${MNISTLAB_DATA_DIR:-$(mktemp -d)}
mkdir -p "$MNISTLAB_DATA_DIR/MNIST/raw"
for f in "$bundle"/MNIST/*.gz; do
    gunzip -c "$f" > "$MNISTLAB_DATA_DIR/MNIST/raw/$(basename "$f" .gz)"
done
"$python" -m bench.gpu --out "${OUT:-outputs/bench-gpu}" "$@"
