"""collector-config/otelcol.yaml: it parses, every component and pipeline reference resolves, the
billing spans go unsampled through the load-balancing exporter keyed by trace id with a persistent
queue, and the routing condition names every attribute the processor recognises a call by.

The collector binary is not available here (DESIGN §5), so the reference checks are done by
`config_problems`, itself tested on broken configurations so that it can be seen to fail;
`otelcol-contrib validate --config collector-config/otelcol.yaml` is the full check."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from llm_margin import attributes as A
from llm_margin.processor import normalize

CONFIG = Path(__file__).resolve().parents[2] / "collector-config" / "otelcol.yaml"
SECTIONS = ("receivers", "processors", "exporters", "connectors", "extensions")
# Component types of the contrib distribution this config may use (a typo is a failure here).
KNOWN_TYPES = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch", "probabilistic_sampler", "tail_sampling", "filter"},
    "exporters": {"loadbalancing", "otlp", "otlphttp", "debug"},
    "connectors": {"routing"},
    "extensions": {"file_storage", "health_check"},
}
SAMPLERS = {"probabilistic_sampler", "tail_sampling", "filter"}
SIGNALS = {"traces", "metrics", "logs"}


def component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def config_problems(doc: dict) -> list[str]:
    """Reference errors the collector would refuse the config for (and a few of our rules)."""
    problems: list[str] = []
    declared = {section: set((doc.get(section) or {}).keys()) for section in SECTIONS}
    for section, ids in declared.items():
        for cid in ids:
            if component_type(cid) not in KNOWN_TYPES[section]:
                problems.append(f"{section}: unknown component type {cid!r}")
    service = doc.get("service") or {}
    for ext in service.get("extensions") or []:
        if ext not in declared["extensions"]:
            problems.append(f"service.extensions: {ext!r} is not declared")
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        problems.append("service.pipelines: none")
    used: dict[str, set[str]] = {section: set() for section in SECTIONS}
    connector_as = {"exporter": set(), "receiver": set()}
    for name, pipeline in pipelines.items():
        if component_type(name) not in SIGNALS:
            problems.append(f"pipeline {name!r}: not a traces/metrics/logs pipeline")
        receivers = pipeline.get("receivers") or []
        exporters = pipeline.get("exporters") or []
        if not receivers or not exporters:
            problems.append(f"pipeline {name!r}: needs receivers and exporters")
        for rid in receivers:
            if rid in declared["receivers"]:
                used["receivers"].add(rid)
            elif rid in declared["connectors"]:
                used["connectors"].add(rid)
                connector_as["receiver"].add(rid)
            else:
                problems.append(f"pipeline {name!r}: receiver {rid!r} is not declared")
        for pid in pipeline.get("processors") or []:
            if pid in declared["processors"]:
                used["processors"].add(pid)
            else:
                problems.append(f"pipeline {name!r}: processor {pid!r} is not declared")
        for eid in exporters:
            if eid in declared["exporters"]:
                used["exporters"].add(eid)
            elif eid in declared["connectors"]:
                used["connectors"].add(eid)
                connector_as["exporter"].add(eid)
            else:
                problems.append(f"pipeline {name!r}: exporter {eid!r} is not declared")
        processors = pipeline.get("processors") or []
        if any(r in declared["receivers"] for r in receivers) and (
            not processors or component_type(processors[0]) != "memory_limiter"
        ):
            problems.append(f"pipeline {name!r}: memory_limiter must come first")
    for cid in declared["connectors"]:
        for role in ("exporter", "receiver"):
            if cid not in connector_as[role]:
                problems.append(f"connector {cid!r}: never used as a pipeline {role}")
        settings = doc["connectors"][cid] or {}
        routes = [p for row in settings.get("table") or [] for p in row.get("pipelines") or []]
        for target in routes + list(settings.get("default_pipelines") or []):
            if target not in pipelines:
                problems.append(f"connector {cid!r}: routes to unknown pipeline {target!r}")
            elif cid not in (pipelines[target].get("receivers") or []):
                problems.append(f"connector {cid!r}: pipeline {target!r} does not receive from it")
    # Storage references (sending_queue.storage) must name an enabled extension.
    enabled_ext = set(service.get("extensions") or [])
    used["extensions"] |= enabled_ext
    for eid, settings in (doc.get("exporters") or {}).items():
        storage = ((settings or {}).get("sending_queue") or {}).get("storage")
        if storage is not None and storage not in enabled_ext:
            problems.append(f"exporter {eid!r}: storage {storage!r} is not an enabled extension")
    for section in SECTIONS:
        for cid in sorted(declared[section] - used[section]):
            problems.append(f"{section}: {cid!r} is declared but unused")
    return problems


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def test_every_reference_resolves(config):
    assert config_problems(config) == []


def _break(config, path, value):
    broken = copy.deepcopy(config)
    node = broken
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return broken


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            ("service", "pipelines", "traces/llm", "exporters"),
            ["loadbalancing/typo"],
            "not declared",
        ),
        (
            ("service", "pipelines", "traces/in", "processors"),
            ["batch/llm"],
            "memory_limiter must come first",
        ),
        (("service", "extensions"), ["health_check"], "not an enabled extension"),
        (("service", "pipelines", "traces/other"), KeyError, "unknown pipeline 'traces/other'"),
        (("service", "pipelines", "traces/llm", "receivers"), ["otlp"], "does not receive from it"),
        (("processors", "batchh"), {}, "unknown component type 'batchh'"),
        (("extensions", "file_storage/queue"), KeyError, "not declared"),
    ],
)
def test_config_problems_catches_broken_references(config, path, value, expected):
    problems = config_problems(_break(config, path, value))
    assert any(expected in p for p in problems), problems


def _llm_pipeline(config) -> tuple[str, dict]:
    router = config["connectors"]["routing/llm"]
    (route,) = router["table"]
    (name,) = route["pipelines"]
    return name, config["service"]["pipelines"][name]


def test_billing_spans_are_unsampled_and_load_balanced_by_trace_id(config):
    name, pipeline = _llm_pipeline(config)
    assert not {component_type(p) for p in pipeline.get("processors", [])} & SAMPLERS
    (exporter_id,) = pipeline["exporters"]
    assert component_type(exporter_id) == "loadbalancing"
    exporter = config["exporters"][exporter_id]
    assert exporter["routing_key"] == "traceID"
    storage = exporter["sending_queue"]["storage"]
    assert component_type(storage) == "file_storage"
    assert storage in config["service"]["extensions"]
    assert exporter["resolver"]["static"]["hostnames"]
    # ... and the pipeline that receives from the apps samples nothing either.
    inbound = [p for p in config["service"]["pipelines"].values() if "otlp" in p["receivers"]]
    assert inbound and all(
        not {component_type(x) for x in p.get("processors", [])} & SAMPLERS for p in inbound
    )
    # Everything else takes the default route, which may sample.
    router = config["connectors"]["routing/llm"]
    assert router["default_pipelines"] and name not in router["default_pipelines"]


def test_routing_condition_names_every_attribute_the_processor_recognises(config):
    condition = config["connectors"]["routing/llm"]["table"][0]["condition"]
    named = set(re.findall(r'attributes\["([^"]+)"\]', condition))
    markers = set(
        normalize.PROVIDER_KEYS + normalize.INPUT_TOKEN_KEYS + normalize.REQUEST_MODEL_KEYS
    )
    assert markers | {A.IS_TASK} <= named, sorted(markers | {A.IS_TASK} - named)
    assert config["connectors"]["routing/llm"]["table"][0]["context"] == "span"


def _ismatch_patterns(condition: str) -> dict[str, re.Pattern]:
    """attribute -> compiled pattern of each IsMatch(attributes["..."], "...") (OTTL unescaped)."""
    found = re.findall(r'IsMatch\(attributes\["([^"]+)"\], "((?:[^"\\]|\\.)*)"\)', condition)
    return {name: re.compile(pattern.replace("\\\\", "\\")) for name, pattern in found}


@pytest.mark.parametrize(
    ("attribute", "value", "routed"),
    [
        ("http.url", "https://api.openai.com/v1/chat/completions", True),
        ("url.full", "https://api.anthropic.com/v1/messages", True),
        ("http.url", "https://acme-eu.openai.azure.com/openai/deployments/x", True),
        ("server.address", "bedrock-runtime.us-east-1.amazonaws.com", True),
        ("server.address", "generativelanguage.googleapis.com", True),
        ("http.url", "https://api.openai.com.evil.example/v1", False),
        ("http.url", "https://example.com/api.openai.com/", False),
        ("server.address", "db.internal", False),
    ],
)
def test_provider_http_attempts_are_routed_to_the_llm_pipeline(config, attribute, value, routed):
    condition = config["connectors"]["routing/llm"]["table"][0]["condition"]
    assert "kind == SPAN_KIND_CLIENT" in condition
    patterns = _ismatch_patterns(condition)
    assert set(patterns) == {"http.url", "url.full", "server.address"}
    assert bool(patterns[attribute].search(value)) is routed
