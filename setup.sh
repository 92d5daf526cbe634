#!/usr/bin/env bash
# One-command set-up: system libraries, a virtual environment in .venv, Python packages, test browser.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0' || need_apt+=(libusb-1.0-0)   # open3d imports it
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)                      # browser tests
command -v ffmpeg >/dev/null 2>&1 || true                                        # imageio-ffmpeg ships its own
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need_apt[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install ${need_apt[*]} (Debian/Ubuntu package names); continuing without them" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -r requirements.txt
# MoGe's metadata pulls the GUI build of OpenCV (needs libGL); both builds provide `cv2`, so keep only the
# headless one, reinstalled so its files are the ones on disk.
if .venv/bin/python -m pip show -q opencv-python >/dev/null 2>&1; then
  .venv/bin/python -m pip uninstall -q -y opencv-python
  .venv/bin/python -m pip install -q --force-reinstall --no-deps "$(.venv/bin/python -m pip freeze | grep -i '^opencv-python-headless==')"
fi
.venv/bin/python -c "import torch, gradio, diffusers, moge; print('setup: ok  torch', torch.__version__, ' gradio', gradio.__version__, ' diffusers', diffusers.__version__)"
