#!/usr/bin/env bash
# Run the Rotel collector in the foreground with llm-margin's settings (rotel.env beside this
# script), for systemd, a container or a terminal. The binary is the one inside the `rotel`
# Python wheel (`pip install rotel`); ROTEL_BIN points elsewhere, PYTHON picks the interpreter
# whose wheel to use. Extra arguments go to `rotel-agent start`.
#
#   LLM_MARGIN_AUTH_TOKEN=... ROTEL_OTLP_EXPORTER_ENDPOINT=http://processor:4317 ./run-rotel.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
env_file="${ROTEL_ENV_FILE:-$here/rotel.env}"

# Defaults from the file; anything already in the environment wins.
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in '' | '#'*) continue ;; esac
    key="${line%%=*}"
    value="${line#*=}"
    if [ -z "${!key+set}" ]; then export "$key=$value"; fi
done <"$env_file"

# The processor's bearer token travels as a header on every export (never put it in rotel.env).
if [ -n "${LLM_MARGIN_AUTH_TOKEN:-}" ] && [ -z "${ROTEL_OTLP_EXPORTER_CUSTOM_HEADERS:-}" ]; then
    export ROTEL_OTLP_EXPORTER_CUSTOM_HEADERS="authorization=Bearer ${LLM_MARGIN_AUTH_TOKEN}"
fi

if [ -z "${ROTEL_BIN:-}" ]; then
    ROTEL_BIN="$("${PYTHON:-python3}" -c 'import pathlib, rotel; print(pathlib.Path(rotel.__file__).parent / "rotel-agent")')" || {
        echo "run-rotel: the rotel package is not installed for ${PYTHON:-python3} (pip install rotel)" >&2
        exit 1
    }
fi
exec "$ROTEL_BIN" start "$@"
