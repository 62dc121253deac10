#!/usr/bin/env bash
# Set up a development environment: system packages, a virtualenv in .venv, mmsearch with all extras.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  # Tools the tests use to make media; not needed to use mmsearch itself.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg espeak-ng chromium chromium-driver fonts-noto-cjk >/dev/null
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch/torchvision pins live in requirements/constraints.txt (not in the package metadata),
# so users keep their own CUDA build.
.venv/bin/pip install -q -c requirements/constraints.txt -e ".[all,dev,bench]"
# clip-retrieval's client is tested against our compatible endpoints; its own heavy
# dependencies (torch pins, Flask back end, ...) are not needed for the client.
.venv/bin/pip install -q --no-deps "clip-retrieval==2.45.0"
echo "setup done: .venv ready"
