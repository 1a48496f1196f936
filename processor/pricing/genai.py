"""genai-prices, fast: its prices resolved once per model and time, applied as exact Decimals.

genai-prices' own ``calc_price`` costs about 100 µs a call (model matching, unit registry,
price decomposition); the receiver's target is tens of thousands of calls a second. Its
price for one model at one time is linear in the token counts unless the model has
long-context tiers, so the coefficients are measured once from genai-prices itself (probe
usages) and checked against it on a sample usage before use. Tiered prices above their
threshold, and anything the check rejects, go through genai-prices unchanged.

A call's request modes select genai-prices' price variants (its ``price_context``): the
service tier (OpenAI and Gemini flex / priority) and the speed (Anthropic fast mode). Each
(model, time, modes) is resolved once, like a model alone.

Only the bundled data snapshot is used; ``UpdatePrices`` (network) is never started.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import genai_prices
from genai_prices import Usage, data_snapshot
from genai_prices.types import TieredPrices

VERSION = f"genai-prices-{genai_prices.__version__}"

# Our canonical provider names -> genai-prices provider ids, where they differ.
PROVIDER_IDS = {"x-ai": "x-ai", "azure": "azure", "aws": "aws", "google": "google"}

_OUR_PROVIDERS = {genai_id: ours for ours, genai_id in PROVIDER_IDS.items()}

# A call's request modes as sorted (price-context key, value) pairs: hashable, for the memo.
PriceModes = tuple[tuple[str, str], ...]

_PROBE = 1000  # tokens per probe: small enough to stay below every long-context tier
_CHECK_USAGE = {
    "input_tokens": 1234,
    "cache_read_tokens": 200,
    "cache_write_tokens": 100,
    "cache_write_1h_tokens": 40,
    "output_tokens": 567,
    "input_audio_tokens": 300,
    "output_audio_tokens": 123,
    "web_search_calls": 3,
    "file_search_calls": 2,
}


@dataclass(frozen=True, slots=True)
class Usage4:
    """Canonical usage: input includes cache read and write; cache write includes 1h; input
    and output include their audio tokens. Search calls are counted apart from every token."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    web_search_calls: int = 0
    file_search_calls: int = 0

    def genai(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens,
            input_audio_tokens=self.input_audio_tokens,
            output_audio_tokens=self.output_audio_tokens,
            # genai-prices' units: web searches, and storage (file / vector store) searches
            web_searches=self.web_search_calls,
            storage_searches=self.file_search_calls,
        )


@dataclass(frozen=True, slots=True)
class Resolved:
    """One model's price at one time: linear coefficients (USD per token) or the slow path."""

    provider_id: str
    model_id: str
    model_price: object  # genai_prices.types.ModelPrice
    per_request: Decimal
    # input, read, write, 1h, output, audio in/out (per token), web and file search (per call)
    coefficients: tuple[Decimal, ...] | None
    tier_threshold: int | None  # total input above which tiered prices apply
    # Whether the price has a web search and a file search price: genai-prices prices a count
    # it has no price for at 0, which would understate a call that made searches.
    web_search_priced: bool = True
    file_search_priced: bool = True
    # The request modes (price-context keys: service_tier, speed) a genai-prices variant of
    # this model priced; the others were priced at the standard price.
    variant_keys: frozenset[str] = frozenset()

    def prices(self, usage: Usage4) -> bool:
        """Whether this price covers all of ``usage`` (each search kind it counts)."""
        return (self.web_search_priced or not usage.web_search_calls) and (
            self.file_search_priced or not usage.file_search_calls
        )

    def cost(self, usage: Usage4) -> Decimal:
        if self.coefficients is None or (
            self.tier_threshold is not None and usage.input_tokens > self.tier_threshold
        ):
            return Decimal(self.model_price.calc_price(usage.genai())["total_price"])
        c_in, c_read, c_write, c_1h, c_out, c_audio_in, c_audio_out, c_web, c_file = (
            self.coefficients
        )
        return (
            self.per_request
            + usage.input_tokens * c_in
            + usage.cache_read_tokens * c_read
            + usage.cache_write_tokens * c_write
            + usage.cache_write_1h_tokens * c_1h
            + usage.output_tokens * c_out
            + usage.input_audio_tokens * c_audio_in
            + usage.output_audio_tokens * c_audio_out
            + usage.web_search_calls * c_web
            + usage.file_search_calls * c_file
        )


def _price(model_price: object, **counts: int) -> Decimal:
    return Decimal(model_price.calc_price(Usage(**counts))["total_price"])


def _linear(model_price: object) -> tuple[Decimal, tuple | None, int | None]:
    """(per-request price, per-token coefficients or None, tier threshold) of one price."""
    n = _PROBE
    base = _price(model_price)
    with_input = _price(model_price, input_tokens=n)
    with_read = _price(model_price, input_tokens=n, cache_read_tokens=n)
    with_write = _price(model_price, input_tokens=n, cache_write_tokens=n)
    with_1h = _price(model_price, input_tokens=n, cache_write_tokens=n, cache_write_1h_tokens=n)
    with_output = _price(model_price, output_tokens=n)
    with_audio_in = _price(model_price, input_tokens=n, input_audio_tokens=n)
    with_audio_out = _price(model_price, output_tokens=n, output_audio_tokens=n)
    with_web = _price(model_price, web_searches=n)
    with_file = _price(model_price, storage_searches=n)
    # Each coefficient is the change one more token of that kind makes; a cache or audio
    # token is also an input (output) token, so its coefficient is relative to a plain one
    # (0 for a model without audio prices: its audio is priced as text).
    coefficients = (
        (with_input - base) / n,
        (with_read - with_input) / n,
        (with_write - with_input) / n,
        (with_1h - with_write) / n,
        (with_output - base) / n,
        (with_audio_in - with_input) / n,
        (with_audio_out - with_output) / n,
        (with_web - base) / n,
        (with_file - base) / n,
    )
    thresholds = [
        min(t.start for t in value.tiers)
        for value in vars(model_price).values()
        if isinstance(value, TieredPrices) and value.tiers
    ]
    threshold = min(thresholds) if thresholds else None
    check = Usage4(**_CHECK_USAGE)
    if threshold is not None and threshold < check.input_tokens:
        return base, None, None
    linear = Resolved("", "", model_price, base, coefficients, None).cost(check)
    if linear != Decimal(model_price.calc_price(check.genai())["total_price"]):
        return base, None, None  # not linear in these counts: always ask genai-prices
    return base, coefficients, threshold


class GenaiPrices:
    """Thread-safe memo of genai-prices lookups by (provider, model, time bucket)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._snapshot = data_snapshot.get_snapshot()
        self._cache: dict[tuple, Resolved | None] = {}
        self._timed: dict[tuple[str, str], bool] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def resolve(
        self, provider: str, model: str, ts: datetime, modes: PriceModes = ()
    ) -> Resolved | None:
        """The price of ``model`` at ``ts`` for a call with these request ``modes`` (sorted
        (key, value) pairs such as ``(("service_tier", "priority"),)``), or None when
        genai-prices does not know the model."""
        pair = (provider, model)
        timed = self._timed.get(pair)
        # Models whose price changes over time (dated changes, time-of-day) are resolved per
        # minute; the rest once.
        minute = int(ts.timestamp()) // 60 if timed or timed is None else 0
        key = (provider, model, minute, modes)
        found = self._cache.get(key, _MISSING)
        if found is not _MISSING:
            return found
        resolved = self._lookup(provider, model, ts, modes)
        with self._lock:
            # Both memos grow with every distinct model name, which spans choose: bounded.
            if len(self._cache) >= self._max:
                self._cache.clear()
            if len(self._timed) >= self._max:
                self._timed.clear()
            if timed is None and resolved is not None:
                info = self._model_info(provider, model)
                self._timed[pair] = _timed(info) if info else False
                if not self._timed[pair]:
                    key = (provider, model, 0, modes)
            elif timed is None:
                self._timed[pair] = False
                key = (provider, model, 0, modes)
            self._cache[key] = resolved
        return resolved

    def provider_of(self, model: str) -> str | None:
        """The provider whose model names ``model`` is (genai-prices' resolution of a name
        without a provider: ``gpt-5`` is OpenAI's, not Azure's, which also serves it), in our
        provider names; None when genai-prices does not know the model."""
        try:
            found, _ = self._snapshot.find_provider_model(model, None, None, None)
        except LookupError:
            return None
        return _OUR_PROVIDERS.get(found.id, found.id)

    def _model_info(self, provider: str, model: str):
        try:
            return self._snapshot.find_provider_model(
                model, None, PROVIDER_IDS.get(provider, provider) or None, None
            )[1]
        except LookupError:
            return None

    def _lookup(
        self, provider: str, model: str, ts: datetime, modes: PriceModes
    ) -> Resolved | None:
        try:
            found_provider, info = self._snapshot.find_provider_model(
                model, None, PROVIDER_IDS.get(provider, provider) or None, None
            )
        except LookupError:
            return None
        context = dict(modes)
        model_price = info.get_prices(ts, context or None)
        try:
            base, coefficients, threshold = _linear(model_price)
        except (ValueError, ArithmeticError):  # a price our probes cannot take: slow path
            base, coefficients, threshold = Decimal(0), None, None
        return Resolved(
            found_provider.id,
            info.id,
            model_price,
            base,
            coefficients,
            threshold,
            getattr(model_price, "web_searches_kcount", None) is not None,
            getattr(model_price, "storage_searches_kcount", None) is not None,
            _variant_keys(info, ts, context),
        )


def _variant_keys(info: object, ts: datetime, context: dict[str, str]) -> frozenset[str]:
    """The ``context`` keys a variant of the model, in effect at ``ts``, matched (what
    ``get_prices`` applied)."""
    if not context:
        return frozenset()
    return frozenset(
        key
        for variant in getattr(info, "price_variants", None) or ()
        if variant.constraint is None or variant.constraint.active(ts)
        if all(context.get(k) == v for k, v in variant.when.items())
        for key in variant.when
    )


def _timed(info: object) -> bool:
    """Whether the model's price depends on the time: dated prices, or a variant with a time
    constraint."""
    return isinstance(info.prices, list) or any(
        variant.constraint is not None for variant in getattr(info, "price_variants", None) or ()
    )


_MISSING = object()
