#!/usr/bin/env bash
# The Raspberry Pi stand-in: an arm64 Debian bookworm root (what Raspberry Pi OS 64-bit is built
# on), run under qemu-user-static emulation, with edgeshelf[device] installed from this working
# tree. It proves that the device install and the device path work on aarch64 WITHOUT TensorFlow:
# `edgeshelf speaker --wav` and a short `edgeshelf benchmark latency` run inside it.
# Timings inside are EMULATED (roughly 100x slower than a real Pi) and mean nothing.
#
#   sudo bash scripts/pi_standin.sh [ROOT_DIR]      (default: /var/tmp/edgeshelf-pi-root)
#
# Needs root (debootstrap, chroot, mount). It builds a demo bundle + shard on the host first
# (`edgeshelf demo --products 300`), copies them in, and writes its report to
# $ROOT_DIR/edgeshelf/pi_report.json and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
ROOT="${1:-/var/tmp/edgeshelf-pi-root}"
MIRROR="${MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || echo http://deb.debian.org/debian)}"
WORK="${WORK:-$HOME/.cache/edgeshelf/pi-demo}"

[ "$(id -u)" -eq 0 ] || { echo "pi_standin: run as root (debootstrap and chroot need it)"; exit 2; }
for pkg in qemu-user-static debootstrap binfmt-support; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || NEED="${NEED:-} $pkg"
done
if [ -n "${NEED:-}" ]; then apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $NEED >/dev/null; fi
mountpoint -q /proc/sys/fs/binfmt_misc || mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true

# 1. The host side: a demo bundle, shard and voice query (the host has TensorFlow; the Pi does not).
[ -x .venv/bin/edgeshelf ] || bash scripts/setup.sh
.venv/bin/edgeshelf demo --workdir "$WORK" --products 300 --json > "$WORK.demo.json"
BUNDLE=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['bundle'])" "$WORK.demo.json")
SHARD=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['shard'])" "$WORK.demo.json")
WAV=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['query_wav'])" "$WORK.demo.json")
rm -rf dist && .venv/bin/python -m pip wheel -q --no-deps -w dist .
WHEEL=$(ls dist/edgeshelf-*.whl | head -n 1)

# 2. The arm64 root (cached between runs).
if [ ! -x "$ROOT/usr/bin/python3" ]; then
  echo "pi_standin: debootstrap arm64 bookworm into $ROOT (about 3 minutes)"
  debootstrap --arch=arm64 --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates,libportaudio2,libatomic1,espeak-ng \
    bookworm "$ROOT" "$MIRROR" >/dev/null
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$ROOT/proc" "$ROOT/sys" "$ROOT/edgeshelf"
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/sys" || mount -t sysfs sys "$ROOT/sys"
trap 'umount "$ROOT/proc" "$ROOT/sys" 2>/dev/null || true' EXIT
rm -rf "$ROOT/edgeshelf/bundle" "$ROOT/edgeshelf/"*.whl
cp -r "$BUNDLE" "$ROOT/edgeshelf/bundle"
cp "$SHARD" "$ROOT/edgeshelf/catalogue.shard"
cp "$WAV" "$ROOT/edgeshelf/query.wav"
cp "$WHEEL" "$ROOT/edgeshelf/"

# 3. Inside: exactly what a Raspberry Pi owner runs (see README, "On a Raspberry Pi").
chroot "$ROOT" /bin/bash -euo pipefail -c '
  cd /edgeshelf
  uname -m
  [ -x venv/bin/python ] || python3 -m venv venv
  venv/bin/pip install -q --upgrade pip
  venv/bin/pip install -q "$(ls edgeshelf-*.whl)[device]"
  venv/bin/python -c "import importlib.util as u; assert u.find_spec(\"tensorflow\") is None, \"TensorFlow must not be on the device\""
  venv/bin/edgeshelf speaker --bundle bundle --shard catalogue.shard --wav query.wav --no-say --json > speaker.json
  venv/bin/edgeshelf benchmark latency --bundle bundle --shard catalogue.shard --wav query.wav --runs 5 --warmup 1 --json latency.json > /dev/null
  venv/bin/python - <<EOF
import json, platform
speaker = json.load(open("speaker.json"))
latency = json.load(open("latency.json"))
report = {"machine": platform.machine(), "emulated": True, "note": "qemu-user emulation: timings mean nothing",
          "speaker": speaker, "latency": latency}
json.dump(report, open("pi_report.json", "w"), indent=2)
print(json.dumps({"machine": report["machine"], "transcript": speaker.get("transcript"),
                  "top": [h.get("title") for h in speaker.get("hits", [])[:3]]}, indent=2))
EOF
'
echo "pi_standin: report in $ROOT/edgeshelf/pi_report.json"
