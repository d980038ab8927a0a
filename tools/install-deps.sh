#!/usr/bin/env bash
# install-deps.sh - install the Debian packages spliced needs to build, test and benchmark.
# Idempotent: only missing packages are installed; does nothing when all are present.
set -euo pipefail

PKGS=(
	build-essential clang llvm libbpf-dev libelf-dev zlib1g-dev libssl-dev
	libcurl4-openssl-dev libpcre2-dev bpftool pkg-config clang-format libclang-rt-14-dev
	bats curl python3 nginx-light haproxy wrk iproute2 procps openssl
	# the Debian package and its test (make deb-test): build, lint, bash completion
	debhelper dpkg-dev fakeroot lintian bash-completion
	# tools/vmtest (the vm test tier): qemu TCG, the initramfs, kernel package extraction
	qemu-system-x86 busybox-static cpio kmod xz-utils zstd lz4 bzip2
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# the packaged nginx/haproxy services must not grab ports or start on install
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 0755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
