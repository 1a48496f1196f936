"""The tests' oracle for an Anthropic inference's price: genai-prices directly, at the scale
llm_calls stores (18 decimal places)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import genai_prices


def anthropic_price(
    model: str, ts: datetime, total: int, output: int, read: int = 0, write: int = 0,
    write_1h: int = 0,
) -> Decimal:  # fmt: skip
    price = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=total,
            output_tokens=output,
            cache_read_tokens=read,
            cache_write_tokens=write,
            cache_write_1h_tokens=write_1h,
        ),
        model,
        provider_id="anthropic",
        genai_request_timestamp=ts,
    ).total_price
    return Decimal(price).quantize(Decimal("1e-18"))
