#!/usr/bin/env bash
# Sets up everything edgeshelf needs on a fresh Debian/Ubuntu machine (or a Raspberry Pi OS):
# system packages (apt), a virtual environment in .venv, and edgeshelf with all extras.
#
#   bash scripts/setup.sh            # host / developer machine: everything (training, server, tests)
#   EXTRAS=device bash scripts/setup.sh   # a device (speaker, glasses, hub): the runtime only
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${EXTRAS:-dev}"
PYTHON="${PYTHON:-python3}"

# System packages: PortAudio for sounddevice, espeak-ng + sox for speech synthesis and resampling
# (the demo's synthesised voice query and the voice tests), the ALSA plugins for the virtual
# microphone, libatomic for Vosk on arm64.
APT_PACKAGES="libportaudio2 espeak-ng sox alsa-utils libasound2-plugins libatomic1"
missing=""
for pkg in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing system packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
echo "setup: installing edgeshelf[$EXTRAS] into .venv (a few minutes the first time)"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
echo "setup: done. Try: .venv/bin/edgeshelf --help"
