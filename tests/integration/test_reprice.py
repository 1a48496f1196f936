"""`prices check`, `reprice` and the restated view, through the real CLI over stored calls.

Calls reach the store through a real OTLP exporter; the commands run as subprocesses of the
installed `llm-margin`, against the embedded store (stopped) or a running `serve`.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest
from llm_margin.clickhouse import read_sql
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import bin_path

pytestmark = pytest.mark.integration

OVERLAY = Path(__file__).resolve().parents[2] / "examples" / "price-overlay.yaml"
Q = Decimal("1e-18")
BEFORE = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)  # before the overlay's price change
AFTER = datetime(2026, 12, 2, 12, tzinfo=timezone.utc)  # after it (effective 2026-12-01)
PERIOD = ["--since", "2026-11-01", "--until", "2027-01-01"]
CALLS = [
    # (span name, provider, model, when, customer)
    ("a", "openai", "gpt-4o-mini", BEFORE, "acme"),
    ("b", "openai", "gpt-4o-mini", AFTER, "acme"),
    ("c", "self-hosted", "llama-3.1-70b-internal", AFTER, None),
]
USAGE = {"input_tokens": 200_000, "output_tokens": 50_000}


def export_calls(grpc_port: int) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test-reprice")
    for name, vendor, model, when, customer in CALLS:
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": vendor,
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": USAGE["input_tokens"],
            "gen_ai.usage.output_tokens": USAGE["output_tokens"],
            "task.id": f"task-{name}",
        }
        if customer:
            attributes["customer.id"] = customer
        start = int(when.timestamp() * 1e9)
        span = tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=attributes, start_time=start
        )
        span.end(end_time=start + 10**8)
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True)
    try:
        assert exporter.export(memory.get_finished_spans()) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [bin_path("llm-margin"), *args], capture_output=True, text=True, timeout=120
    )


def genai(model: str, when: datetime) -> Decimal:
    return genai_prices.calc_price(
        genai_prices.Usage(**USAGE), model, provider_id="openai", genai_request_timestamp=when
    ).total_price


def test_check_then_reprice_with_an_overlay(processor):
    export_calls(processor.grpc.port)
    data_dir = processor.config.data_dir
    processor.stop()

    unknown = cli("prices", "check", "--data-dir", data_dir, "--format", "json", *PERIOD)
    assert unknown.returncode == 1, unknown.stderr
    assert json.loads(unknown.stdout) == [
        {
            "provider": "self-hosted",
            "model": "llama-3.1-70b-internal",
            "calls": 1,
            "input_tokens": 200_000,
            "output_tokens": 50_000,
            "web_search_calls": 0,
            "file_search_calls": 0,
            "stored_unpriced_calls": 1,
            "reason": "no price for the model",
        }
    ]
    covered = cli(
        "prices", "check", "--data-dir", data_dir, "--format", "json", "--price-overlay",
        str(OVERLAY), *PERIOD,
    )  # fmt: skip
    assert (covered.returncode, json.loads(covered.stdout)) == (0, [])

    done = cli(
        "reprice", "--data-dir", data_dir, "--format", "json", "--price-overlay", str(OVERLAY),
        *PERIOD,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [summary] = json.loads(done.stdout)

    # Oracles: as charged = genai-prices; restated = overlay (12% openai discount, price change
    # from 2026-12-01, self-hosted per-token + per-request).
    charged = {"a": genai("gpt-4o-mini", BEFORE), "b": genai("gpt-4o-mini", AFTER), "c": Decimal(0)}
    restated = {
        "a": genai("gpt-4o-mini", BEFORE) * Decimal("0.88"),
        "b": (Decimal("0.2") * Decimal("0.12") + Decimal("0.05") * Decimal("0.48"))
        * Decimal("0.88"),
        "c": Decimal("0.2") * Decimal("0.20")
        + Decimal("0.05") * Decimal("0.60")
        + Decimal("0.0001"),
    }
    assert (summary["calls"], summary["newly_priced"], summary["still_unpriced"]) == (3, 1, 0)
    assert Decimal(summary["charged_usd"]) == sum(v.quantize(Q) for v in charged.values())
    assert Decimal(summary["restated_usd"]) == sum(v.quantize(Q) for v in restated.values())

    from llm_margin.processor.storage import Store

    store = Store.open(data_dir=data_dir)
    try:
        rows = store.query(
            read_sql("queries/calls_restated.sql"),
            {"since": datetime(2026, 11, 1), "until": datetime(2027, 1, 1)},
        ).dicts()
        calls = {r["model"]: r for r in rows if r["model"] != "gpt-4o-mini"}
        by_ts = {
            r["ts"].replace(tzinfo=timezone.utc).date(): r
            for r in rows
            if r["model"] == "gpt-4o-mini"
        }
    finally:
        store.close()
    assert by_ts[BEFORE.date()]["charged_cost_usd"] == charged["a"].quantize(Q)
    assert by_ts[BEFORE.date()]["restated_cost_usd"] == restated["a"].quantize(Q)
    assert by_ts[AFTER.date()]["restated_cost_usd"] == restated["b"].quantize(Q)
    llama = calls["llama-3.1-70b-internal"]
    assert (llama["charged_cost_usd"], llama["restated_cost_usd"]) == (0, restated["c"])
    assert llama["customer_id"] == "(unattributed)" and llama["restated_priced"]
    assert "+overlay-" in llama["restated_price_version"]

    # reconcile compares the restated cost: the provider billed the discounted price
    export = Path(data_dir).parent / "openai-costs.csv"
    export.write_text(
        "start_time_iso,end_time_iso,organization_id,project_id,project_name,line_item,"
        "amount_value,amount_currency\n"
        + "".join(
            f"{when:%Y-%m-%d}T00:00:00+00:00,{when:%Y-%m-%d}T23:59:59+00:00,org,proj,Prod,"
            f'"gpt-4o-mini-2024-07-18, input",{restated[name].quantize(Q)},usd\n'
            for name, when in (("a", BEFORE), ("b", AFTER))
        )
    )
    compared = cli(
        "reconcile", "--provider-usage", str(export), "--data-dir", data_dir,
        "--tolerance-usd", "0.000001", "--format", "json",
    )  # fmt: skip
    assert compared.returncode == 0, compared.stderr
    rows = {r["day"]: r for r in json.loads(compared.stdout) if r["model"] == "gpt-4o-mini"}
    for name, when in (("a", BEFORE), ("b", AFTER)):
        row = rows[f"{when:%Y-%m-%d}"]
        assert Decimal(row["restated_cost_usd"]) == restated[name].quantize(Q)
        assert Decimal(row["stored_cost_usd"]) == charged[name].quantize(Q)
        assert row["explanation"].startswith("match; restated by reprice"), row


def test_check_works_while_serve_runs_and_reprice_refuses_clearly(serve_process):
    export_calls(serve_process["grpc_port"])
    data_dir = serve_process["data_dir"]
    unknown = cli("prices", "check", "--data-dir", data_dir, "--format", "json", *PERIOD)
    assert unknown.returncode == 1, unknown.stderr
    assert [r["model"] for r in json.loads(unknown.stdout)] == ["llama-3.1-70b-internal"]
    refused = cli("reprice", "--data-dir", data_dir, *PERIOD)
    assert refused.returncode == 2 and "serve` is running" in refused.stderr
    # a dry run only reads: the running processor answers it, and nothing is stored
    dry = cli(
        "reprice", "--data-dir", data_dir, "--format", "json", "--price-overlay", str(OVERLAY),
        "--dry-run", *PERIOD,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    [summary] = json.loads(dry.stdout)
    assert (summary["calls"], summary["newly_priced"], summary["still_unpriced"]) == (3, 1, 0)
    restated = cli(
        "sql", "--data-dir", data_dir, "--format", "json",
        "SELECT count() AS n FROM llm_call_restatements",
    )  # fmt: skip
    assert restated.returncode == 0, restated.stderr
    assert json.loads(restated.stdout) == [{"n": 0}]


def test_reprice_on_a_missing_data_dir_is_an_error(tmp_path):
    missing = tmp_path / "typo"
    result = cli("reprice", "--data-dir", str(missing), *PERIOD)
    assert result.returncode == 2 and "no llm-margin data" in result.stderr
    assert not missing.exists()


def store_priced_calls(data_dir: str, calls: list[tuple[str, str, dict]]) -> None:
    """One call of 1,000 input and 100 output tokens per (provider, model, other fields),
    an hour apart on 2026-11-20, priced by the default book and stored under ``data_dir``."""
    from llm_margin.processor.pricing import PriceBook
    from llm_margin.processor.records import CallRecord
    from llm_margin.processor.storage import Store

    store = Store.open(data_dir=data_dir)
    try:
        store.insert_calls(
            [
                PriceBook().apply(
                    CallRecord(
                        ts=datetime(2026, 11, 20, n, tzinfo=timezone.utc),
                        trace_id=f"{n:032x}",
                        span_id=f"{n:016x}",
                        provider=provider,
                        request_model=model,
                        input_tokens=1000,
                        output_tokens=100,
                        version=1,
                        **fields,
                    )
                )
                for n, (provider, model, fields) in enumerate(calls, 1)
            ]
        )
    finally:
        store.close()


def test_check_lists_models_unpriced_only_for_their_searches(tmp_path):
    """A model the book prices is still unpriced for calls whose searches it has no price for
    (gpt-4.1-nano has no search prices, Anthropic models no file search price): `prices check`
    lists it with the reason and the overlay field that prices it. It asked about tokens only,
    so such models were not listed."""
    data_dir = str(tmp_path / "data")
    store_priced_calls(
        data_dir,
        [
            ("openai", "gpt-4.1-nano", {"web_search_calls": 2}),
            ("openai", "gpt-4.1-nano", {}),
            ("anthropic", "claude-sonnet-4-5", {"web_search_calls": 1, "file_search_calls": 3}),
            ("openai", "gpt-4o", {"web_search_calls": 5, "file_search_calls": 1}),  # priced
        ],
    )
    check = ["prices", "check", "--data-dir", data_dir, "--format", "json", *PERIOD]
    listed = cli(*check)
    assert listed.returncode == 1, listed.stderr
    got = {
        r["model"]: (r["calls"], r["web_search_calls"], r["file_search_calls"],
                     r["stored_unpriced_calls"], r["reason"])
        for r in json.loads(listed.stdout)
    }  # fmt: skip
    assert got == {
        "gpt-4.1-nano": (
            2,
            2,
            0,
            1,
            "no web search price; give the model's overlay entry `web_search_per_k`",
        ),
        "claude-sonnet-4-5": (
            1,
            1,
            3,
            1,
            "no file search price; give the model's overlay entry `file_search_per_k`",
        ),
    }
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(
        "models:\n"
        "  - {provider: openai, model: gpt-4.1-nano, input_per_mtok: '0.1', web_search_per_k: 10}\n"
        "  - {provider: anthropic, model: claude-sonnet-4-5, input_per_mtok: 3,\n"
        "     output_per_mtok: 15, web_search_per_k: 10, file_search_per_k: '2.5'}\n"
    )
    covered = cli(*check, "--price-overlay", str(overlay))
    assert (covered.returncode, json.loads(covered.stdout)) == (0, [])


def test_calls_in_a_premium_mode_without_its_price_are_listed_then_repriced(tmp_path):
    """Anthropic fast mode costs several times the standard price, a priority tier more than
    it. A fast call of a model genai-prices has no fast price for, or a priority one with no
    priority price, is stored unpriced, `prices check` says why and names the provider's
    multiplier to add, and once the overlay gives the mode a multiplier `reprice` prices it at
    standard x that."""
    data_dir = str(tmp_path / "data")
    store_priced_calls(
        data_dir,
        [
            ("anthropic", "claude-sonnet-4-5", {"speed": "fast"}),  # no fast price: unpriced
            ("anthropic", "claude-sonnet-4-5", {"speed": "standard"}),
            ("anthropic", "claude-opus-4-8", {"speed": "fast"}),  # genai-prices' fast price
            ("google", "gemini-2.5-flash", {"service_tier": "priority"}),  # none: unpriced
            ("google", "gemini-2.5-flash", {"service_tier": "flex"}),  # none: standard (cheaper)
            ("anthropic", "claude-sonnet-4-5", {"service_tier": "priority"}),  # a commitment
        ],
    )
    check = ["prices", "check", "--data-dir", data_dir, "--format", "json", *PERIOD]
    listed = cli(*check)
    assert listed.returncode == 1, listed.stderr
    got = [
        (r["model"], r["calls"], r["stored_unpriced_calls"], r["reason"])
        for r in json.loads(listed.stdout)
    ]
    assert got == [
        (
            "claude-sonnet-4-5",
            3,
            1,
            "no fast-mode price; give `anthropic/fast` a multiplier under `speeds:` in a price "
            "overlay",
        ),
        (
            "gemini-2.5-flash",
            2,
            1,
            "no priority-tier price; give `google/priority` a multiplier under `service_tiers:` "
            "in a price overlay",
        ),
    ]
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("speeds:\n  fast: 6\nservice_tiers:\n  google/priority: '1.8'\n")
    covered = cli(*check, "--price-overlay", str(overlay))
    assert (covered.returncode, json.loads(covered.stdout)) == (0, [])
    done = cli(
        "reprice", "--data-dir", data_dir, "--format", "json", "--price-overlay", str(overlay),
        *PERIOD,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [summary] = json.loads(done.stdout)
    assert (summary["calls"], summary["newly_priced"], summary["still_unpriced"]) == (6, 2, 0)

    def standard(model: str, provider: str) -> Decimal:
        return genai_prices.calc_price(
            genai_prices.Usage(input_tokens=1000, output_tokens=100),
            model,
            provider_id=provider,
            genai_request_timestamp=datetime(2026, 11, 20, tzinfo=timezone.utc),
        ).total_price

    # the others are restated unchanged; sonnet's fast call at 6x, gemini's priority at 1.8x
    assert Decimal(summary["restated_usd"]) - Decimal(summary["charged_usd"]) == standard(
        "claude-sonnet-4-5", "anthropic"
    ) * 6 + standard("gemini-2.5-flash", "google") * Decimal("1.8")


def test_a_store_of_the_release_before_the_new_columns_is_upgraded_and_repriced(tmp_path):
    """A store whose llm_calls and llm_call_restatements lack the columns added with sub-usage
    and inference geography (and traffic type) gets them on open (ADD COLUMN IF NOT EXISTS), keeps its calls, and
    takes and restates calls that use them."""
    from llm_margin.processor.pricing import PriceBook
    from llm_margin.processor.records import CallRecord
    from llm_margin.processor.repricing import reprice
    from llm_margin.processor.storage import Store

    added = {
        "llm_calls": (
            "sub_usage",
            "sub_usage_cost_usd",
            "sub_usage_entry_costs_usd",
            "inference_geo",
            "traffic_type",
        ),
        "llm_call_restatements": (
            "restated_sub_usage_cost_usd",
            "restated_sub_usage_entry_costs_usd",
        ),
    }
    data_dir = str(tmp_path / "data")
    store = Store.open(data_dir=data_dir)
    try:
        for table, columns in added.items():  # as the release before them made the tables
            drops = ", ".join(f"DROP COLUMN {column}" for column in columns)
            store.command(f"ALTER TABLE {table} {drops}")
        store.command(
            "INSERT INTO llm_calls (ts, trace_id, span_id, customer_id, provider, "
            "request_model, input_tokens, version) VALUES "
            "('2026-11-20 09:00:00', 't0', 'old', 'acme', 'openai', 'gpt-4o-mini', 1000, 1)"
        )
    finally:
        store.close()
    book = PriceBook()
    calls = [
        CallRecord(
            ts=BEFORE,
            trace_id=f"t{n}",
            span_id=f"new{n}",
            customer_id="acme",
            provider="anthropic",
            request_model="claude-opus-4-6",
            response_model="claude-opus-4-6",
            input_tokens=1000,
            output_tokens=100,
            version=1,
            **mode,
        )
        for n, mode in enumerate(
            [
                {"sub_usage": (("compaction", "", 5000, 500, 0, 0, 0),)},
                {"inference_geo": "us"},
                {"traffic_type": "provisioned_throughput"},
            ]
        )
    ]
    store = Store.open(data_dir=data_dir)
    try:
        for table, columns in added.items():
            assert set(columns) <= set(store._columns(table)), table
        store.insert_calls([book.apply(call) for call in calls])
        assert calls[0].priced and calls[0].sub_usage_cost_usd > 0 and not calls[1].priced
        assert not calls[2].priced
        summary = reprice(store, book, BEFORE.replace(hour=0), BEFORE.replace(hour=23))
        assert (summary.calls, summary.still_unpriced) == (4, 2)  # the US-only and PT calls
        restated = store.query(
            "SELECT span_id, restated_sub_usage_cost_usd, restated_sub_usage_entry_costs_usd "
            "FROM llm_call_restatements FINAL ORDER BY span_id"
        ).rows
    finally:
        store.close()
    cost = calls[0].sub_usage_cost_usd
    assert restated == [("new0", cost, [cost]), ("new1", 0, []), ("new2", 0, []), ("old", 0, [])]
