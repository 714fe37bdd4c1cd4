#!/usr/bin/env bash
# The Python packages a lent GPU machine lacks, as wheels in .whl/ for its Python 3.12 (x86-64):
# dlspec's own dependencies, Keras 3 with its two missing ones, and pytest with its own (the
# session's check step runs the GPU tests), at the versions the checkout's .venv pins. The device
# image already holds torch, jax, jinja2, numpy, matplotlib, h5py.
# benchmarks/gpu_session.sh installs them there.  Usage: bash tools/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  lark==1.3.1 shtab==1.13.0 rich==15.0.0 black==26.10.1 pytokens==0.4.1 platformdirs==4.14.9 \
  keras==3.15.1 namex==0.1.0 optree==0.20.0 \
  pytest==9.2.0 iniconfig==2.3.1 pluggy==1.7.0 packaging==26.4 pygments==2.21.0
ls .whl
