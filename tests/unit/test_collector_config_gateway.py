"""collector-config/gateway/: the Envoy config refuses unknown callers and replaces client
baggage on every forwarded route, with the same key -> identity pairs as the nginx map; the
nginx template's placeholders are the documented ones. (nginx itself runs in
tests/integration/test_gateway_nginx.py; Envoy is not installable here.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context

GATEWAY = Path(__file__).resolve().parents[2] / "collector-config" / "gateway"
IDENTITY_KEYS = {"customer.id", "workspace.id", "plan"}


def api_key_map() -> dict[str, str]:
    pairs = re.findall(r'^"([^"]+)"\s+"([^"]+)";', (GATEWAY / "api-keys.map").read_text(), re.M)
    assert pairs, "api-keys.map has no entries"
    return dict(pairs)


def parse_baggage(value: str) -> dict[str, str]:
    return dict(baggage.get_all(W3CBaggagePropagator().extract({"baggage": value}, Context())))


def envoy_routes() -> list[dict]:
    doc = yaml.safe_load((GATEWAY / "envoy.yaml").read_text())
    (listener,) = doc["static_resources"]["listeners"]
    (hcm,) = listener["filter_chains"][0]["filters"]
    config = hcm["typed_config"]
    assert config["http_filters"][-1]["name"] == "envoy.filters.http.router"
    clusters = {c["name"] for c in doc["static_resources"]["clusters"]}
    routes = [r for vh in config["route_config"]["virtual_hosts"] for r in vh["routes"]]
    for route in routes:
        if "route" in route:
            assert route["route"]["cluster"] in clusters
    return routes


def envoy_key_baggage(route: dict) -> tuple[str, str]:
    """(API key, baggage) of one forwarding route; asserts how it treats client baggage."""
    (matcher,) = route["match"]["headers"]
    key = matcher["string_match"]["exact"]
    if matcher["name"] == "authorization":
        assert key.startswith("Bearer ")
        key = key.removeprefix("Bearer ")
    else:
        assert matcher["name"] == "x-api-key"
    added = [h for h in route["request_headers_to_add"] if h["header"]["key"].lower() == "baggage"]
    assert len(added) == 1, route
    assert added[0]["append_action"] == "OVERWRITE_IF_EXISTS_OR_ADD", route
    return key, added[0]["header"]["value"]


def test_every_envoy_route_authenticates_and_replaces_baggage():
    routes = envoy_routes()
    *forwarding, last = routes
    assert last["direct_response"]["status"] == 401 and "route" not in last
    assert last["match"] == {"prefix": "/"}
    seen: dict[str, set[str]] = {}
    for route in forwarding:
        assert "direct_response" not in route
        key, value = envoy_key_baggage(route)
        seen.setdefault(key, set()).add(value)
        removed = {h.lower() for h in route.get("request_headers_to_remove", [])}
        assert {"x-api-key", "authorization"} <= removed  # the key stays at the gateway
    # Both header forms for every key of the nginx map, with the same identity.
    expected = api_key_map()
    assert {k: next(iter(v)) for k, v in seen.items()} == expected
    assert all(len(v) == 1 for v in seen.values())
    assert len(forwarding) == 2 * len(expected)


@pytest.mark.parametrize("value", list(api_key_map().values()))
def test_mapped_baggage_is_valid_and_carries_the_identity(value):
    parsed = parse_baggage(value)
    assert set(parsed) == IDENTITY_KEYS and all(parsed.values()), value
    assert " " not in value


def test_nginx_template_placeholders_and_baggage_handling():
    text = (GATEWAY / "nginx.conf.template").read_text()
    body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert set(re.findall(r"\$\{(\w+)\}", body)) == {
        "LLM_MARGIN_LISTEN",
        "LLM_MARGIN_APP_UPSTREAM",
        "LLM_MARGIN_API_KEYS_MAP",
    }
    # Every location that proxies sets `baggage` from the map (which replaces the client's).
    locations = re.findall(r"location [^{]+\{(.*?)\n    \}", body, re.S)
    proxied = [loc for loc in locations if "proxy_pass" in loc]
    assert proxied and all(
        re.search(r"proxy_set_header\s+baggage\s+\$llm_margin_baggage;", loc) for loc in proxied
    )
    assert all(
        re.search(r'if \(\$llm_margin_baggage = ""\)\s*\{\s*return 401', loc) for loc in proxied
    )
