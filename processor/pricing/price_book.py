"""The price book: the overlay's prices where it has them, else genai-prices; then multipliers.

``price_version`` on every priced row names what priced it: ``genai-prices-<version>``, plus
``+overlay-<sha256 prefix>`` of the overlay file's bytes when one is configured, so rows priced
under different books can be told apart and ``reprice`` can restate them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

from llm_margin.processor.pricing.genai import VERSION as GENAI_VERSION
from llm_margin.processor.pricing.genai import GenaiPrices, PriceModes, Usage4
from llm_margin.processor.pricing.overlay import Overlay, load_overlay
from llm_margin.processor.records import CallRecord

COST_QUANTUM = Decimal("1e-18")  # the scale of llm_calls.cost_usd (Decimal(38, 18))
# Enough digits for every cost Decimal(38, 18) holds, computed exactly: the default 28 digits
# failed (InvalidOperation, no message) on costs from $1e10 and rounded long products twice.
_MONEY = Context(prec=60)


# Speeds priced at the standard price ("" when the call did not say).
_STANDARD_SPEEDS = frozenset({"", "standard"})
# Tiers billed per token at a premium: a call served in one with no price for it (genai-prices
# has priority prices for only some models, two of Gemini's) is unpriced, as a fast call is,
# rather than priced as standard, which would understate it without saying so. Anthropic's
# Priority Tier is a capacity commitment, priced as standard.
PREMIUM_TIERS = {"openai": frozenset({"priority"}), "google": frozenset({"priority"})}
# Inference geographies priced at the standard price ("" when the call did not say). Any other
# (Anthropic's "us": US-only inference, 1.1x the token prices on Opus 4.6 and later models)
# needs an ``inference_geos`` multiplier in the overlay; without one the call is unpriced.
STANDARD_GEOS = frozenset({"", "global"})
# Traffic types billed per token on demand, at the call's service tier ("" when the call did
# not say; Vertex AI reports its Priority and Flex PayGo tiers as traffic types, and the
# instrumentation records their tier too). Any other (Vertex AI's "provisioned_throughput":
# paid by a fixed subscription, not per token) needs a ``traffic_types`` multiplier in the
# overlay ("0": no marginal cost); without one the call is unpriced, neither charged the list
# price, which overstates it, nor silently nothing.
ON_DEMAND_TRAFFIC = frozenset({"", "on_demand", "on_demand_priority", "on_demand_flex"})
TRAFFIC_TIERS = {"on_demand_priority": "priority", "on_demand_flex": "flex"}


# Google bills Grounding with Google Search per grounded prompt (a request whose answer was
# grounded, however many queries it ran) for Gemini 1.x and 2.x, per search query for Gemini 3
# and later. Calls record the queries; these models' searches are billed as one.
_PER_PROMPT_SEARCH_MODEL = re.compile(r"gemini-[12]\.")


def billed_searches(provider: str, names: tuple[str, ...], usage: Usage4) -> Usage4:
    """``usage`` with its web searches counted in the provider's billing unit: a call to Gemini
    1.x or 2.x (its response model, else its request model) is one grounded prompt."""
    if (
        usage.web_search_calls > 1
        and provider == "google"
        and names
        and _PER_PROMPT_SEARCH_MODEL.match(names[0])
    ):
        return replace(usage, web_search_calls=1)
    return usage


def price_modes(service_tier: str, speed: str) -> PriceModes:
    """The genai-prices price context of a call's request modes, as sorted pairs."""
    modes = []
    if service_tier:
        modes.append(("service_tier", service_tier.lower()))
    if speed and speed not in _STANDARD_SPEEDS:
        modes.append(("speed", speed))
    return tuple(modes)


@dataclass(frozen=True, slots=True)
class Price:
    cost_usd: Decimal
    priced: bool
    price_version: str
    source: str = ""  # "overlay", "genai-prices" or "" when unpriced
    # The part of cost_usd the web (file) searches account for; the rest is the tokens'.
    web_search_cost_usd: Decimal = Decimal(0)
    file_search_cost_usd: Decimal = Decimal(0)
    # The part of cost_usd the call's sub-inferences (sub_usage) account for, and each entry's
    # cost in sub_usage's order (they sum to it exactly; empty when unpriced).
    sub_usage_cost_usd: Decimal = Decimal(0)
    sub_usage_costs: tuple[Decimal, ...] = ()


# One sub-inference of a call billed outside its top-level usage, as llm_calls.sub_usage holds
# it: (kind, model, input, output, cache read, cache write, cache write 1h); model "" = the
# call's own model.
SubUsage = tuple[str, str, int, int, int, int, int]


def sub_usage_rows(value: object) -> tuple[SubUsage, ...]:
    """llm_calls.sub_usage as read back (a list of dicts from a named Tuple, or of tuples) in
    the CallRecord's shape."""
    rows = []
    for entry in value or ():
        if isinstance(entry, dict):
            entry = tuple(entry.values())
        kind, model, *counts = entry
        rows.append((str(kind), str(model), *(int(count) for count in counts)))
    return tuple(rows)


class PriceBook:
    """Prices calls. Unknown models are returned unpriced (cost 0, priced False), never dropped."""

    def __init__(self, overlay: Overlay | None = None, genai: GenaiPrices | None = None) -> None:
        self.overlay = overlay or Overlay()
        self._genai = genai or GenaiPrices()
        self.version = GENAI_VERSION + (f"+overlay-{overlay.digest}" if overlay else "")

    @classmethod
    def from_file(cls, overlay_path: str | None) -> PriceBook:
        return cls(load_overlay(overlay_path) if overlay_path else None)

    def price_usage(
        self,
        provider: str,
        models: tuple[str, ...],
        usage: Usage4,
        ts: datetime,
        service_tier: str = "",
        speed: str = "",
        sub_usage: tuple[SubUsage, ...] = (),
        inference_geo: str = "",
        traffic_type: str = "",
    ) -> Price:
        """Price one call's usage: the first of ``models`` (response, then request) the overlay
        has an entry for, else the first genai-prices knows; at the price of the call's
        service tier and speed mode where genai-prices has one, and of its inference
        geography (see overlay.py).

        Each of ``sub_usage`` (sub-inferences billed outside the top-level usage) is priced on
        its own, like a call: on the call's models when it names none (a compaction: the call's
        speed mode too), else on the model it names (an advisor: standard speed, as its own
        speed is not reported), under the call's service tier. One that cannot be priced
        leaves the whole call unpriced, as a search without a price does. They ran in the call's
        inference geography and traffic type, and are priced at their multipliers too."""
        # where and how the call was served: the multipliers of its tokens
        served = (inference_geo.lower(), traffic_type.lower())
        # Vertex AI's Priority and Flex PayGo are billed at their tier: a span that names the
        # traffic type only is priced at it (ours records the tier too)
        service_tier = service_tier or TRAFFIC_TIERS.get(served[1], "")
        with localcontext(_MONEY):
            price = self._price_usage(
                provider, models, usage, ts, service_tier, speed.lower(), *served
            )
            if not sub_usage or not price.priced:
                return price
            costs = []
            for _kind, model, *counts in sub_usage:
                part = self._price_usage(
                    provider,
                    (model,) if model else models,
                    Usage4(*counts),
                    ts,
                    service_tier,
                    "" if model else speed.lower(),
                    *served,
                )
                if not part.priced:
                    return Price(Decimal(0), False, "")
                costs.append(part.cost_usd)
            extra = sum(costs, Decimal(0))
            return replace(
                price,
                cost_usd=price.cost_usd + extra,
                sub_usage_cost_usd=extra,
                sub_usage_costs=tuple(costs),
            )

    def _price_usage(
        self,
        provider: str,
        models: tuple[str, ...],
        usage: Usage4,
        ts: datetime,
        service_tier: str,
        speed: str,
        inference_geo: str,
        traffic_type: str = "",
    ) -> Price:
        names = tuple(model for model in models if model)
        usage = billed_searches(provider, names, usage)
        modes = price_modes(service_tier, speed)
        found = self._base(provider, names, usage, ts, modes)
        if found is None:
            return Price(Decimal(0), False, "")
        base, source, priced_modes = found
        # A mode genai-prices priced is in ``base``: the overlay's multiplier for it would
        # count it twice.
        tier = "" if "service_tier" in priced_modes else service_tier
        if (
            tier.lower() in PREMIUM_TIERS.get(provider, ())
            and self.overlay.tier_multiplier(provider, tier) is None
        ):
            return Price(Decimal(0), False, "")
        factor = self.overlay.multiplier(provider, names, tier, ts)
        if speed not in _STANDARD_SPEEDS and "speed" not in priced_modes:
            speed_factor = self.overlay.speed_multiplier(provider, speed)
            if speed_factor is None:  # a premium mode with no price: unpriced, not understated
                return Price(Decimal(0), False, "")
            factor *= speed_factor
        geo_factor = Decimal(1)
        if inference_geo not in STANDARD_GEOS:
            found_geo = self.overlay.geo_multiplier(provider, inference_geo)
            if found_geo is None:  # a premium geography with no price: unpriced, as above
                return Price(Decimal(0), False, "")
            geo_factor = found_geo
        if traffic_type not in ON_DEMAND_TRAFFIC:
            found_traffic = self.overlay.traffic_multiplier(provider, traffic_type)
            if found_traffic is None:  # a subscription's call with no price: unpriced, as above
                return Price(Decimal(0), False, "")
            geo_factor *= found_traffic
        # The searches' share: what they add to the price, before multipliers. Taken as a
        # difference of two prices from the same entry, it holds for every price shape
        # (overlay, linear or tiered genai-prices) and costs nothing for calls without searches.
        searches = []
        for kind in ("web_search_calls", "file_search_calls"):
            share = Decimal(0)
            if getattr(usage, kind):
                without = self._base(provider, names, replace(usage, **{kind: 0}), ts, modes)
                assert without is not None  # fewer searches: the same entry prices it
                share = base - without[0]
            searches.append(share)
        if geo_factor != 1:
            # The geography's premium (and the traffic type's share) is on the tokens (every
            # kind), not on the searches, billed per search whatever paid for the tokens
            base += (geo_factor - 1) * (base - sum(searches))
        cost = (base * factor).quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)
        shares = [(share * factor).quantize(COST_QUANTUM, ROUND_HALF_EVEN) for share in searches]
        return Price(cost, True, self.version, source, *shares)

    def _base(
        self, provider: str, names: tuple[str, ...], usage: Usage4, ts: datetime, modes: PriceModes
    ) -> tuple[Decimal, str, frozenset[str]] | None:
        """The price of ``usage`` before multipliers, its source and the request modes it
        includes (genai-prices variants); None: unpriced."""
        # An overlay entry wins over genai-prices whichever of the call's names it matches:
        # providers answer with a dated snapshot (gpt-4o-mini-2024-07-18) that genai-prices
        # knows, while the overlay names the model the app asked for.
        # A price without a price for the searches a call made leaves the call unpriced, as an
        # unknown model does (report unpriced, prices check; reprice once a price is added):
        # pricing them at 0 would understate its cost without saying so.
        for model in names:
            entry = self.overlay.model_entry(provider, model, ts)
            if entry is not None:
                if not entry.prices(usage.web_search_calls, usage.file_search_calls):
                    return None
                cost = entry.cost(
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cache_read_tokens,
                    usage.cache_write_tokens,
                    usage.web_search_calls,
                    usage.file_search_calls,
                )
                return cost, "overlay", frozenset()
        for model in names:
            resolved = self._genai.resolve(provider, model, ts, modes)
            if resolved is not None:
                if not resolved.prices(usage):
                    return None
                return resolved.cost(usage), "genai-prices", resolved.variant_keys
        return None

    def providers_of(self, model: str) -> frozenset[str]:
        """The providers the book resolves a model name to, for a price asked without one
        (`prices show --service-tier`, `--speed`, `--inference-geo`): those the overlay's
        entries for it name, and the one genai-prices resolves the name to. Empty: unknown;
        several: ambiguous."""
        genai = self._genai.provider_of(model)
        return self.overlay.providers_of(model) | ({genai} if genai else set())

    def price(self, call: CallRecord) -> Price:
        return self.price_usage(
            call.provider,
            (call.response_model, call.request_model),
            Usage4(
                call.input_tokens,
                call.output_tokens,
                call.cache_read_tokens,
                call.cache_write_tokens,
                call.cache_write_1h_tokens,
                call.input_audio_tokens,
                call.output_audio_tokens,
                call.web_search_calls,
                call.file_search_calls,
            ),
            call.ts,
            call.service_tier,
            call.speed,
            call.sub_usage,
            call.inference_geo,
            call.traffic_type,
        )

    def apply(self, call: CallRecord) -> CallRecord:
        price = self.price(call)
        call.cost_usd, call.priced, call.price_version = (
            price.cost_usd,
            price.priced,
            price.price_version,
        )
        call.web_search_cost_usd = price.web_search_cost_usd
        call.file_search_cost_usd = price.file_search_cost_usd
        call.sub_usage_cost_usd = price.sub_usage_cost_usd
        call.sub_usage_entry_costs_usd = price.sub_usage_costs
        return call
