#!/usr/bin/env bash
# Installs sdvk's build and test dependencies from Debian 12's archive.
# Runs apt-get only for what is missing, so repeated runs are quick.
set -euo pipefail
pkgs=(cmake gcc make pkg-config zlib1g-dev libutf8proc-dev libjansson-dev libstb-dev
      libpng-dev libjpeg62-turbo-dev
      libvulkan-dev libvulkan-volk-dev glslang-tools spirv-tools
      mesa-vulkan-drivers vulkan-validationlayers vulkan-tools
      libmicrohttpd-dev)
if [ "${1:-}" = "--tests" ]; then
  # Python (tokenizer cross-check), NEON cross build and x86 dispatch tests under qemu,
  # headless Chromium for the `sdvk serve` browser test.
  pkgs+=(python3 python3-numpy gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user chromium)
fi
if [ "${1:-}" = "--fuzz" ]; then
  # libFuzzer builds of tests/fuzz (tests/fuzz/campaign.sh); CI's corpus
  # replay builds with gcc and needs none of this.
  pkgs+=(clang libclang-rt-14-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
