#!/usr/bin/env bash
# The Raspberry Pi stand-in: an arm64 Debian bookworm root (what Raspberry Pi OS 64-bit is built
# on), run under qemu-user-static emulation, with edgeshelf[device] installed from this working
# tree. It proves that the device install and the device path work on aarch64 WITHOUT TensorFlow:
# `edgeshelf speaker --wav` and a short `edgeshelf benchmark latency` run inside it.
# Timings inside are EMULATED (roughly 100x slower than a real Pi) and mean nothing.
#
#   sudo bash scripts/pi_standin.sh [ROOT_DIR]      (default: /var/tmp/edgeshelf-pi-root)
#
# Needs root (debootstrap, chroot, mount). Steps:
#   1. on the host: `edgeshelf demo --products $PRODUCTS` (default 300; cached in $WORK) for a
#      speaker bundle, a shard and a spoken query, and the edgeshelf wheel of this tree;
#   2. the arm64 root (debootstrap, cached between runs), /proc and /sys mounted;
#   3. inside: `pip install edgeshelf-*.whl[device]` (pip resolves the aarch64 wheels of the
#      device dependencies), a check that TensorFlow is absent, `edgeshelf speaker --wav`, and
#      `edgeshelf benchmark latency` with EDGESHELF_EMULATED=1 (its JSON says "emulated": true);
#   4. on the host: the same words through the same bundle and shard must give the same top 10.
# The report is $ROOT_DIR/edgeshelf/pi_report.json (copied to $WORK.pi_report.json); a summary
# is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="${1:-/var/tmp/edgeshelf-pi-root}"
MIRROR="${MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || echo http://deb.debian.org/debian)}"
WORK="${WORK:-$HOME/.cache/edgeshelf/pi-demo}"
PRODUCTS="${PRODUCTS:-300}"
# ai-edge-litert 2.2.0 and 2.3.0 (aarch64 wheels) crash with SIGSEGV in Interpreter() under
# qemu-user 7.2 (every -cpu model tried, any model, XNNPACK on or off); 2.1.6 and older run. The
# stand-in pins this version inside the emulated root; whether a real Pi is affected is unknown.
PI_LITERT="${PI_LITERT:-ai-edge-litert==2.1.6}"
# The emulated CPU: a Cortex-A76 is a Raspberry Pi 5's core (cortex-a72 for a Pi 4). qemu's
# default ("max") advertises extensions whose emulation gave wrong int8 results in XNNPACK's
# kernels (measured: another top-10 for the same words); the check at the end catches that.
PI_CPU="${PI_CPU:-cortex-a76}"

[ "$(id -u)" -eq 0 ] || { echo "pi_standin: run as root (debootstrap and chroot need it)"; exit 2; }
for pkg in qemu-user-static debootstrap binfmt-support; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || NEED="${NEED:-} $pkg"
done
if [ -n "${NEED:-}" ]; then apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $NEED >/dev/null; fi
mountpoint -q /proc/sys/fs/binfmt_misc || mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true

# 1. The host side: a demo bundle, shard and voice query (the host has TensorFlow; the Pi does not).
[ -x .venv/bin/edgeshelf ] || bash scripts/setup.sh
mkdir -p "$(dirname "$WORK")"
echo "pi_standin: host: edgeshelf demo --workdir $WORK --products $PRODUCTS (cached after the first run)"
.venv/bin/edgeshelf demo --workdir "$WORK" --products "$PRODUCTS" --json > "$WORK.demo.json"
# The demo report names its artifacts (bundle, shard, query_wav); else they sit in its workdir.
field() {
  .venv/bin/python -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(r.get(sys.argv[2]) or (r.get("workdir", "") + "/" + sys.argv[3]))' "$WORK.demo.json" "$1" "$2"
}
BUNDLE=$(field bundle speaker.bundle)
SHARD=$(field shard catalogue.shard)
WAV=$(field query_wav query.wav)
for f in "$BUNDLE" "$SHARD" "$WAV"; do
  [ -e "$f" ] || { echo "pi_standin: the demo left no $f (see $WORK.demo.json)"; exit 2; }
done
WHEELS=$(mktemp -d)
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$WHEELS" .
WHEEL=$(ls "$WHEELS"/edgeshelf-*.whl | head -n 1)

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
trap 'umount "$ROOT/proc" "$ROOT/sys" 2>/dev/null || true; rm -rf "$WHEELS"' EXIT
rm -rf "$ROOT/edgeshelf/bundle" "$ROOT/edgeshelf/"*.whl "$ROOT/edgeshelf/"*.json
cp -r "$BUNDLE" "$ROOT/edgeshelf/bundle"
cp "$SHARD" "$ROOT/edgeshelf/catalogue.shard"
cp "$WAV" "$ROOT/edgeshelf/query.wav"
cp "$WHEEL" "$ROOT/edgeshelf/"

# 3. Inside: exactly what a Raspberry Pi owner runs (see README, "On a Raspberry Pi"), in a clean
# environment (the host's pip settings point at host paths).
chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
  QEMU_CPU="$PI_CPU" EDGESHELF_EMULATED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
  PIP_CERT=/etc/ssl/certs/ca-certificates.crt PI_LITERT="$PI_LITERT" \
  /bin/bash -euo pipefail -c '
  cd /edgeshelf
  echo "pi_standin: inside the root: $(uname -m), $(python3 --version)"
  [ -x venv/bin/python ] || python3 -m venv venv
  venv/bin/pip install -q "$(ls edgeshelf-*.whl)[device]"
  [ -z "$PI_LITERT" ] || venv/bin/pip install -q "$PI_LITERT"
  echo "pi_standin: installed $(venv/bin/pip list 2>/dev/null | grep -i -E "^(edgeshelf|ai-edge-litert|numpy) " | tr -s " " | paste -sd, -)"
  venv/bin/python -c "import importlib.util as u; assert u.find_spec(\"tensorflow\") is None, \"TensorFlow must not be on the device\""
  echo "pi_standin: edgeshelf speaker --wav (emulated: slow)"
  venv/bin/edgeshelf speaker --bundle bundle --shard catalogue.shard --wav query.wav --no-say --json > speaker.json
  echo "pi_standin: edgeshelf benchmark latency (emulated: slow)"
  venv/bin/edgeshelf benchmark latency --bundle bundle --shard catalogue.shard --wav query.wav \
    --runs 5 --warmup 1 --asr-runs 2 --quiet --json latency.json > /dev/null
  venv/bin/python - <<"PY"
import json, platform
speaker = json.load(open("speaker.json"))
latency = json.load(open("latency.json"))
report = {
    "machine": platform.machine(),
    "emulated": True,
    "note": "qemu-user emulation of aarch64 on x86: timings mean nothing, installs and behaviour do",
    "speaker": speaker,
    "latency": latency,
}
json.dump(report, open("pi_report.json", "w"), indent=2)
probe = latency["memory"]["speaker_runtime"] or {}
print(json.dumps({
    "machine": report["machine"],
    "emulated": True,
    "cpu_model_seen": latency["machine"]["cpu_model"],
    "transcript": (speaker.get("transcript") or {}).get("text"),
    "top": [h.get("title") for h in speaker.get("hits", [])[:3]],
    "interpreter": latency["bundle"]["interpreter"] + " " + latency["bundle"]["interpreter_version"],
    "p50_ms_EMULATED": {k: v["p50_ms"] for k, v in latency["stages"].items()},
    "asr_rtf_p50_EMULATED": (latency.get("asr") or {}).get("real_time_factor", {}).get("p50"),
    "speaker_runtime_peak_rss_mb": round(probe.get("peak_rss_bytes", 0) / 1e6, 1),
}, indent=2))
PY
'
cp "$ROOT/edgeshelf/pi_report.json" "$WORK.pi_report.json"
echo "pi_standin: report in $ROOT/edgeshelf/pi_report.json (copy: $WORK.pi_report.json)"

# 4. The answer on aarch64 must be the host's answer: the same words through the same bundle
# and shard on x86 give the same top 10 (a wrong SIMD path would rank other products).
.venv/bin/python - "$WORK.pi_report.json" "$BUNDLE" "$SHARD" <<"PY"
import json, sys
from edgeshelf.sdk import QueryEncoder, Shard
report, bundle, shard = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
speaker = report["speaker"]
words = speaker["query"]
pi_ids = [h["product_id"] for h in speaker["hits"]]
with QueryEncoder.open(bundle) as encoder, Shard.open(shard) as cached:
    host_ids = list(cached.search(encoder.embed(text=words), k=len(pi_ids)).ids)
overlap = len(set(pi_ids) & set(host_ids)) / max(1, len(host_ids))
print(f"pi_standin: aarch64 vs x86 answer to {words!r}: top-{len(host_ids)} overlap {overlap:.2f}, "
      f"same first product: {pi_ids[:1] == host_ids[:1]}")
if overlap < 0.8 or pi_ids[:1] != host_ids[:1]:
    sys.exit("pi_standin: FAILED: the emulated device ranks other products than the host for the same words")
PY
