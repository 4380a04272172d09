#!/bin/bash
# Install what building and testing cowroot needs on Debian bookworm.
# Run as root.  Safe to run again.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "setup-deps: run as root" >&2
	exit 1
fi

packages=(
	# build
	build-essential meson ninja-build pkg-config git
	libfuse3-dev fuse3 libsqlite3-dev zlib1g-dev sqlite3
	# tests and the demo
	debootstrap attr acl libcap2-bin fuse-overlayfs util-linux
	ca-certificates coreutils findutils diffutils jq
)

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
