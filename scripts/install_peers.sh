#!/usr/bin/env bash
# Install the peers `scripts/eval` compares the engine with. Idempotent: installs only what is missing.
#
#   bash scripts/install_peers.sh
#
# - Meta's vPDQ (PyPI `vpdq`, an sdist compiled here against the system FFmpeg libraries, so it needs Debian's
#   pkg-config, cmake and libav*-dev packages first; g++ is already on the machine).
# - Chromaprint's `fpcalc` (Debian `libchromaprint-tools`).
# Debian packages are whatever the release ships (its security updates replace exact versions); the PyPI
# package is pinned. `scripts/eval` runs without either and reports a missing peer as "not installed".
set -euo pipefail

VPDQ_VERSION="0.2.5"
DEBIAN_PACKAGES=(
    pkg-config cmake
    libavcodec-dev libavformat-dev libavdevice-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev
    libchromaprint-tools
)
PYTHON="${PYTHON:-python3}"

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install_peers: apt-get install ${missing[*]}"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "install_peers: Debian packages present"
fi

installed="$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("vpdq"))' 2>/dev/null || true)"
if [ "$installed" != "$VPDQ_VERSION" ]; then
    echo "install_peers: pip install vpdq==$VPDQ_VERSION (compiles; about 20 s)"
    "$PYTHON" -m pip install -q "vpdq==$VPDQ_VERSION"
else
    echo "install_peers: vpdq $VPDQ_VERSION present"
fi

"$PYTHON" -c 'import vpdq' && echo "install_peers: vpdq imports"
fpcalc -version
