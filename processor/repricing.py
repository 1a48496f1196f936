"""Restating stored calls under a price book (the work behind `llm-margin reprice`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from llm_margin.clickhouse import read_sql
from llm_margin.processor.pricing import PriceBook
from llm_margin.processor.pricing.genai import Usage4
from llm_margin.processor.pricing.price_book import sub_usage_rows
from llm_margin.processor.reports.money import money_str
from llm_margin.processor.reports.period import naive_utc

RESTATEMENT_COLUMNS = (
    "ts",
    "customer_id",
    "span_id",
    "call_version",
    "charged_cost_usd",
    "charged_price_version",
    "restated_cost_usd",
    "restated_priced",
    "restated_price_version",
    "restated_at",
    "version",
    "restated_web_search_cost_usd",
    "restated_file_search_cost_usd",
    "restated_sub_usage_cost_usd",
    "restated_sub_usage_entry_costs_usd",
)
INSERT_CHUNK = 50_000
# Calls read per query (reprice_calls.sql pages in key order). A running processor that
# refuses a page as too large (413, its max_result_rows / max_result_bytes) gets smaller ones.
PAGE_ROWS = 50_000


@dataclass
class RepriceSummary:
    since: datetime
    until: datetime
    price_version: str
    calls: int = 0
    changed: int = 0
    newly_priced: int = 0
    still_unpriced: int = 0
    charged_usd: Decimal = Decimal(0)
    restated_usd: Decimal = Decimal(0)

    def row(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(timespec="seconds"),
            "until": self.until.isoformat(timespec="seconds"),
            "price_version": self.price_version,
            "calls": self.calls,
            "changed_calls": self.changed,
            "newly_priced": self.newly_priced,
            "still_unpriced": self.still_unpriced,
            "charged_usd": money_str(self.charged_usd),
            "restated_usd": money_str(self.restated_usd),
            "difference_usd": money_str(self.restated_usd - self.charged_usd),
        }


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def reprice(
    store: Any, book: PriceBook, since: datetime, until: datetime, *, dry_run: bool = False
) -> RepriceSummary:
    """Price every stored call of [since, until) with ``book``; store restatements."""
    summary = RepriceSummary(since, until, book.version)
    now = datetime.now(timezone.utc)
    version = time.time_ns()
    pending: list[tuple] = []
    for record in stored_calls(store, since, until):
        ts = _utc(record["ts"])
        price = book.price_usage(
            record["provider"],
            (record["response_model"], record["request_model"]),
            Usage4(
                int(record["input_tokens"]),
                int(record["output_tokens"]),
                int(record["cache_read_tokens"]),
                int(record["cache_write_tokens"]),
                int(record["cache_write_1h_tokens"]),
                int(record["input_audio_tokens"]),
                int(record["output_audio_tokens"]),
                int(record["web_search_calls"]),
                int(record["file_search_calls"]),
            ),
            ts,
            record["service_tier"],
            record["speed"],
            sub_usage_rows(record["sub_usage"]),
            record["inference_geo"],
            record["traffic_type"],
        )
        charged = Decimal(record["cost_usd"])
        summary.calls += 1
        summary.charged_usd += charged
        summary.restated_usd += price.cost_usd
        summary.changed += price.cost_usd != charged
        was_priced = record["price_version"] != ""
        summary.newly_priced += price.priced and not was_priced
        summary.still_unpriced += not price.priced
        pending.append(
            (
                ts,
                record["customer_id"],
                record["span_id"],
                int(record["version"]),
                charged,
                record["price_version"],
                price.cost_usd,
                price.priced,
                price.price_version,
                now,
                version,
                price.web_search_cost_usd,
                price.file_search_cost_usd,
                price.sub_usage_cost_usd,
                list(price.sub_usage_costs),
            )
        )
        if len(pending) >= INSERT_CHUNK and not dry_run:
            store.insert_rows("llm_call_restatements", pending, RESTATEMENT_COLUMNS)
            pending = []
    if pending and not dry_run:
        store.insert_rows("llm_call_restatements", pending, RESTATEMENT_COLUMNS)
    return summary


def stored_calls(
    store: Any, since: datetime, until: datetime, page_rows: int = PAGE_ROWS
) -> Iterator[dict[str, Any]]:
    """The stored calls of [since, until), read page by page (``reprice_calls.sql``) so that
    neither this process nor a running processor answering for it holds the whole period.
    A page the processor refuses as too large (413) is asked again smaller: within its
    ``max_result_rows`` when it says so, else half as many rows (its bytes bound)."""
    from llm_margin.processor.remote import RemoteError

    sql = read_sql("queries/reprice_calls.sql")
    period = {"since": naive_utc(since), "until": naive_utc(until)}
    after: tuple[str, str] | None = None
    while True:
        parameters = {
            **period,
            "first": int(after is None),
            "after_customer": after[0] if after else "",
            "after_span": after[1] if after else "",
            "page_rows": page_rows,
        }
        try:
            rows = store.query(sql, parameters).dicts()
        except RemoteError as exc:
            if exc.status != 413 or page_rows == 1:
                raise
            page_rows = smaller_page(page_rows, exc.max_result_rows)
            continue
        yield from rows
        if len(rows) < page_rows:
            return
        after = (rows[-1]["customer_id"], rows[-1]["span_id"])


def smaller_page(page_rows: int, max_result_rows: int | None) -> int:
    """The next page size after ``page_rows`` rows were refused as too large (pure)."""
    if max_result_rows and max_result_rows < page_rows:
        return max_result_rows
    return max(1, page_rows // 2)
