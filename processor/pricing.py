"""The price book: genai-prices data (offline, shipped with the package) priced exactly.

Every priced row records ``price_version`` so ``reprice`` can restate history. genai-prices is
used from its bundled snapshot only; its network auto-update is never started.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

import genai_prices
from genai_prices import Usage
from llm_margin.processor.records import CallRecord

log = logging.getLogger(__name__)

COST_QUANTUM = Decimal("1e-18")  # the scale of llm_calls.cost_usd (Decimal(38, 18))

# Our canonical provider names -> genai-prices provider ids, where they differ.
GENAI_PRICES_PROVIDER = {"x-ai": "x-ai", "azure": "azure", "aws": "aws", "google": "google"}


@dataclass(frozen=True, slots=True)
class Price:
    cost_usd: Decimal
    priced: bool
    price_version: str


class PriceBook:
    """Prices calls. Unknown models are returned unpriced (cost 0, priced False), never dropped."""

    def __init__(self) -> None:
        self.version = f"genai-prices-{genai_prices.__version__}"

    def price(self, call: CallRecord) -> Price:
        model = call.response_model or call.request_model
        if not model:
            return Price(Decimal(0), False, "")
        usage = Usage(
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
            cache_read_tokens=call.cache_read_tokens,
            cache_write_tokens=call.cache_write_tokens,
        )
        provider_id = GENAI_PRICES_PROVIDER.get(call.provider, call.provider) or None
        try:
            result = genai_prices.calc_price(
                usage, model, provider_id=provider_id, genai_request_timestamp=call.ts
            )
        except LookupError:
            if call.request_model and call.request_model != model:
                try:
                    result = genai_prices.calc_price(
                        usage,
                        call.request_model,
                        provider_id=provider_id,
                        genai_request_timestamp=call.ts,
                    )
                except LookupError:
                    return Price(Decimal(0), False, "")
            else:
                return Price(Decimal(0), False, "")
        cost = Decimal(result.total_price).quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)
        return Price(cost, True, self.version)

    def apply(self, call: CallRecord) -> CallRecord:
        price = self.price(call)
        call.cost_usd, call.priced, call.price_version = (
            price.cost_usd,
            price.priced,
            price.price_version,
        )
        return call


@lru_cache(maxsize=1)
def default_price_book() -> PriceBook:
    return PriceBook()
