"""What the price book says for one model: the rows of `llm-margin prices show`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from llm_margin.processor.pricing.genai import Usage4
from llm_margin.processor.pricing.price_book import PriceBook
from llm_margin.processor.reports.money import money_str

_PROBE = 1000  # tokens per probe, below every long-context tier
_SCALE = 1_000_000 // _PROBE


def explain_model(
    book: PriceBook,
    provider: str,
    model: str,
    at: datetime,
    service_tier: str = "",
    speed: str = "",
    inference_geo: str = "",
    traffic_type: str = "",
) -> list[dict[str, Any]]:
    """Per-million-token prices (after overlay multipliers) measured from the book itself,
    for calls at ``service_tier`` and ``speed``, run in ``inference_geo`` and served as
    ``traffic_type`` (the standard price when not given).

    Each price is measured from the book (a thousand tokens of that kind, scaled to a
    million), so what is shown is what calls are charged, overlay and genai-prices alike, below
    any long-context tier. A cache token is also an input token: cache prices are the whole
    cost of one such token. Empty when the book cannot price the model.
    """
    probes = {
        "input": Usage4(_PROBE),
        "output": Usage4(output_tokens=_PROBE),
        "cache_read": Usage4(_PROBE, cache_read_tokens=_PROBE),
        "cache_write": Usage4(_PROBE, cache_write_tokens=_PROBE),
    }
    modes = dict(
        service_tier=service_tier,
        speed=speed,
        inference_geo=inference_geo,
        traffic_type=traffic_type,
    )
    base = book.price_usage(provider, (model,), Usage4(), at, **modes)
    if not base.priced:
        return []
    row: dict[str, Any] = {
        "provider": provider or "(any)",
        "model": model,
        "at": at.isoformat(timespec="seconds"),
    }
    if service_tier:
        row["service_tier"] = service_tier
    if speed:
        row["speed"] = speed
    if inference_geo:
        row["inference_geo"] = inference_geo
    if traffic_type:
        row["traffic_type"] = traffic_type
    row.update(source=base.source, per_request_usd=base.cost_usd)
    for name, usage in probes.items():
        priced = book.price_usage(provider, (model,), usage, at, **modes)
        price = priced.cost_usd - base.cost_usd
        row[f"{name}_per_mtok_usd"] = price * _SCALE
    row["price_version"] = base.price_version
    return [{k: (money_str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}]
