#!/usr/bin/env bash
# Install ragreports into .venv and run the demo on the bundled sample reports (offline, no API key).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
.venv/bin/ragreports demo
