#!/usr/bin/env bash
# Installs the Debian packages that integration tests run for real. Idempotent: does nothing
# when they are already there. Needs root (CI and the dev machines run as root); without it,
# says what to install and the tests that need it report themselves skipped.
set -euo pipefail

packages=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx-light)
# Headless Chromium renders the weekly HTML report in tests/integration/test_html*.py.
command -v chromium >/dev/null 2>&1 || packages+=(chromium)

if [ ${#packages[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: please install: ${packages[*]} (needs root and apt-get)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# The package starts a system nginx on port 80; the tests run their own on free ports.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
pkill -x nginx >/dev/null 2>&1 || true
