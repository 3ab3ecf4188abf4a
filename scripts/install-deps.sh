#!/usr/bin/env bash
# Installs glasnode's build, test and testbed dependencies from Debian 12 packages.
# Idempotent: only missing packages are installed. Needs root (or sudo).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config ccache clang clang-format libclang-rt-14-dev
  # libraries
  libtorrent-rasterbar-dev libboost-dev libsodium-dev libmsgpack-cxx-dev liblmdb-dev
  libcli11-dev libspdlog-dev libfmt-dev libtomlplusplus-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # emulation testbed (tests/emu) and measurement references
  iproute2 iptables ipset nftables ethtool tcpdump tshark libndpi-bin iperf3 python3 libnetfilter-queue-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root (missing: ${missing[*]})" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
