#!/usr/bin/env bash
# Installs the Debian packages that integration tests run for real. Idempotent: does nothing
# when they are already there. Needs root (CI and the dev machines run as root); without it,
# says what to install and the tests that need it report themselves skipped.
set -euo pipefail

packages=()
# nginx runs the gateway config in tests/integration/test_gateway*.py. The `nginx` package has
# the binary on Debian 12 and 13 (the -light/-full flavours are gone or transitional).
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx)
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
# The package may start a system nginx on port 80; the tests run their own on free ports and
# need none. Stop only that instance (the one whose pid is in the package's pid file).
if [[ " ${packages[*]} " == *" nginx "* ]]; then
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now nginx >/dev/null 2>&1 || true
    elif [ -s /run/nginx.pid ]; then
        /usr/sbin/nginx -s quit >/dev/null 2>&1 || true
    fi
fi
