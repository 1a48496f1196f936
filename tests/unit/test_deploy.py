"""deploy/: the example config documents every ServeConfig field with its real default and loads;
the systemd unit and the Dockerfile point at what exists and agree with the processor's
defaults (ports, drain time, config path)."""

from __future__ import annotations

import configparser
import re
import shlex
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
import yaml
from llm_margin.processor.config import ServeConfig, load_serve_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
EXAMPLE = DEPLOY / "llm-margin.example.yaml"
# Fields the example sets to production paths rather than to the default.
PRODUCTION_PATHS = {"data_dir", "spool_dir"}


def example_lines() -> list[str]:
    return EXAMPLE.read_text().splitlines()


def test_example_documents_every_field_with_a_comment():
    lines = example_lines()
    keys = {}
    for index, line in enumerate(lines):
        found = re.match(r"^([a-z_]+):", line)
        if found:
            keys[found.group(1)] = index
    assert set(keys) == {f.name for f in fields(ServeConfig)}
    for key, index in keys.items():
        assert lines[index - 1].startswith("#"), f"{key} has no comment above it"


def test_example_values_are_the_defaults():
    document = yaml.safe_load(EXAMPLE.read_text())
    resolved = ServeConfig().validate()  # defaults that depend on other settings, resolved
    for field in fields(ServeConfig):
        if field.name in PRODUCTION_PATHS:
            continue
        default = field.default if field.default is not MISSING else field.default_factory()
        if default is None and field.name == "max_inflight_body_bytes":
            default = resolved.max_inflight_body_bytes
        assert document[field.name] == default, field.name


def test_example_loads(tmp_path):
    config = load_serve_config(str(EXAMPLE), {"data_dir": str(tmp_path)})
    assert config.otlp_grpc_port == 4317 and config.cluster_name is None


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read_string((DEPLOY / name).read_text())
    return parser


def test_systemd_unit_runs_serve_with_the_config_and_outlasts_the_drain():
    unit = _unit("llm-margin.service")
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0].endswith("/llm-margin") and argv[1] == "serve"
    assert argv[argv.index("--config") + 1] == "/etc/llm-margin/llm-margin.yaml"
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    stop = int(unit["Service"]["TimeoutStopSec"])
    assert stop > ServeConfig().drain_seconds + 5
    state = "/var/lib/" + unit["Service"]["StateDirectory"]
    document = yaml.safe_load(EXAMPLE.read_text())
    assert document["data_dir"].startswith(state) and document["spool_dir"].startswith(state)
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_rotel_unit_runs_the_launch_script():
    unit = _unit("rotel.service")
    assert unit["Service"]["ExecStart"].endswith("/rotel/run-rotel.sh")
    assert (ROOT / "collector-config" / "rotel" / "run-rotel.sh").exists()


def dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (m.group(1).upper(), m.group(2).strip())
        for m in re.finditer(r"^([A-Z]+)\s+(.*)$", text, re.M)
    ]


def test_dockerfile_copies_what_exists_and_serves_the_example():
    instructions = dockerfile()
    copies = [args.split() for op, args in instructions if op == "COPY" and "--from" not in args]
    for *sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), source
    # Every folder pyproject maps onto a package is in the build context copied.
    package_dirs = re.search(r"package-dir = \{(.*?)\}", (ROOT / "pyproject.toml").read_text())
    for folder in re.findall(r'= "([\w-]+)"', package_dirs.group(1)):
        assert [folder + "/", folder + "/"] in [c for c in copies if len(c) == 2], folder
    (config_dest,) = [c[1] for c in copies if c[0] == "deploy/llm-margin.example.yaml"]
    (cmd,) = [args for op, args in instructions if op == "CMD"]
    assert config_dest in cmd and '"0.0.0.0"' in cmd
    (expose,) = [args for op, args in instructions if op == "EXPOSE"]
    assert set(expose.split()) == {
        str(ServeConfig().otlp_grpc_port),
        str(ServeConfig().otlp_http_port),
    }
    assert any(op == "USER" and args != "root" for op, args in instructions)


@pytest.mark.parametrize("name", ["llm-margin.service", "rotel.service"])
def test_units_have_the_three_sections(name):
    assert {"Unit", "Service", "Install"} <= set(_unit(name).sections())
