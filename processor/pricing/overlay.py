"""The price overlay: your own prices on top of genai-prices, from one YAML file.

Format (every section optional; prices in USD, per million tokens unless named per request)::

    models:                    # custom, self-hosted, or a price genai-prices lacks or has wrong
      - provider: self-hosted  # optional: any provider when left out
        model: llama-3.1-70b-internal   # exact name, or a glob such as "llama-3.1-*"
        input_per_mtok: "0.20"
        output_per_mtok: "0.60"
        cache_read_per_mtok: "0.05"     # default: the input price
        cache_write_per_mtok: "0.25"    # default: the input price
        per_request: "0.0001"
        web_search_per_k: "10"          # USD per 1,000 web searches (server-side tool calls)
        file_search_per_k: "2.50"       # USD per 1,000 file searches (OpenAI Responses)
        effective_from: 2026-12-01      # optional: the price applies to calls from this date
        effective_until: 2027-01-01     # optional, exclusive
    discounts:                 # negotiated: percent off the price (after tiers and off-peak)
      - provider: openai
        model: "gpt-4o*"       # optional
        percent: "15"
        effective_from: 2026-11-01
    service_tiers:             # multiplier by the call's service tier (batch, flex, priority)
      batch: "0.5"             # for models genai-prices has no price of that tier for
      flex: "0.5"
      openai/priority: "1.75"  # provider/tier: that provider's tier only (wins over the name)
    speeds:                    # multiplier by the call's speed mode (Anthropic fast mode)
      fast: "6"                # for models genai-prices has no fast-mode price for
    inference_geos:            # multiplier by where inference ran (Anthropic data residency)
      anthropic/us: "1.1"      # US-only inference: 1.1x the token prices (Opus 4.6 and later)
    traffic_types:             # multiplier by how the call was served (Vertex AI traffic type)
      google/provisioned_throughput: "0"  # paid by the PT subscription: no cost per token
    off_peak:                  # multiplier inside a daily UTC window (may wrap past midnight)
      - provider: deepseek
        start: "16:30"
        end: "00:30"
        multiplier: "0.5"

Money is parsed from strings (or integers) into Decimal: a YAML float such as ``0.1`` is
accepted but converted through its shortest decimal spelling, never binary.

Among model entries that match a call, the one with the latest ``effective_from`` that has
started wins, exact names before globs; a call with no matching entry is priced by
genai-prices. An entry without ``web_search_per_k`` (``file_search_per_k``) cannot price a call
that made web (file) searches: the call is stored unpriced, as for an unknown model, rather
than with its searches at 0. Discounts of several matching entries do not stack: the most specific (model
named, exactly before a glob, then provider named), then the latest ``effective_from`` that
has started, applies.

A call's service tier or speed mode that genai-prices prices for its model (OpenAI and Gemini
flex / priority, Anthropic fast mode) is charged that price, and ``service_tiers`` / ``speeds``
do not apply to it; they multiply the standard price where genai-prices has none (overlay
models too). A call at a speed other than standard with neither price is stored unpriced:
fast mode costs several times the standard price, and pricing it as standard would
understate it without saying so.

An inference geography other than ``global`` (Anthropic's ``us``: US-only inference, billed at
1.1x every token price on Claude Opus 4.6, Sonnet 4.6 and later models, which alone accept
``inference_geo``) is priced with its ``inference_geos`` multiplier, on the tokens only (not on
web searches); a call at a geography with none is stored unpriced, for the same reason.
genai-prices has no data-residency prices, so the overlay is where this one comes from.

A traffic type other than on demand (Vertex AI's ``provisioned_throughput``: a call served from
Provisioned Throughput, paid by a fixed subscription rather than per token) is priced with its
``traffic_types`` multiplier, on the tokens only (Grounding with Google Search is billed per
search all the same): ``"0"`` counts no marginal cost, a share such as ``"0.6"`` allocates the
subscription to calls. A call of a traffic type with none is stored unpriced: the on-demand list
price would overstate it, and 0 would hide the subscription without saying so. ``on_demand``
(a call over the Provisioned Throughput quota is billed so) and Vertex AI's Priority and Flex
PayGo (``on_demand_priority``, ``on_demand_flex``: priced at the priority and flex tier) are
billed per token and take no ``traffic_types`` multiplier.

A tier or speed name alone applies to every provider's calls in that mode; ``provider/name``
to that provider's only, and wins over the name alone. Providers mean different things by
one name: OpenAI bills ``priority`` per token at a premium, while Anthropic's Priority Tier is
a capacity commitment, not a per-token premium.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml


class OverlayError(ValueError):
    """The overlay file is wrong; the message names the entry and the field."""


_MTOK = Decimal(1_000_000)
_K = Decimal(1000)


@dataclass(frozen=True)
class ModelPriceEntry:
    model: str
    provider: str | None
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal
    cache_write_per_mtok: Decimal
    per_request: Decimal
    effective_from: datetime | None
    effective_until: datetime | None
    # USD per 1,000 server-side tool calls; None: no price (a call with such calls is unpriced).
    web_search_per_k: Decimal | None = None
    file_search_per_k: Decimal | None = None

    def prices(self, web_searches: int, file_searches: int) -> bool:
        """Whether this entry has a price for each kind of search the call made."""
        return (self.web_search_per_k is not None or not web_searches) and (
            self.file_search_per_k is not None or not file_searches
        )

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cache_read: int,
        cache_write: int,
        web_searches: int = 0,
        file_searches: int = 0,
    ) -> Decimal:
        fresh = max(0, input_tokens - cache_read - cache_write)
        searches = Decimal(0)
        if web_searches:
            searches += web_searches * (self.web_search_per_k or 0)
        if file_searches:
            searches += file_searches * (self.file_search_per_k or 0)
        return (
            self.per_request
            + searches / _K
            + (
                fresh * self.input_per_mtok
                + cache_read * self.cache_read_per_mtok
                + cache_write * self.cache_write_per_mtok
                + output_tokens * self.output_per_mtok
            )
            / _MTOK
        )


@dataclass(frozen=True)
class Discount:
    provider: str | None
    model: str | None
    percent: Decimal
    effective_from: datetime | None
    effective_until: datetime | None

    @property
    def factor(self) -> Decimal:
        return (Decimal(100) - self.percent) / Decimal(100)


@dataclass(frozen=True)
class OffPeak:
    provider: str | None
    model: str | None
    start: time
    end: time
    multiplier: Decimal

    def active(self, ts: datetime) -> bool:
        now = ts.astimezone(timezone.utc).time()
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end


@dataclass(frozen=True)
class Overlay:
    models: tuple[ModelPriceEntry, ...] = ()
    discounts: tuple[Discount, ...] = ()
    service_tiers: Mapping[str, Decimal] = field(default_factory=dict)
    off_peak: tuple[OffPeak, ...] = ()
    digest: str = ""  # content hash, part of price_version
    speeds: Mapping[str, Decimal] = field(default_factory=dict)
    inference_geos: Mapping[str, Decimal] = field(default_factory=dict)
    traffic_types: Mapping[str, Decimal] = field(default_factory=dict)

    def model_entry(self, provider: str, model: str, ts: datetime) -> ModelPriceEntry | None:
        best: tuple | None = None
        for entry in self.models:
            if not _matches(entry.provider, entry.model, provider, model):
                continue
            if not _in_effect(entry.effective_from, entry.effective_until, ts):
                continue
            rank = (
                not _is_glob(entry.model),
                entry.provider is not None,
                entry.effective_from or _EPOCH,
            )
            if best is None or rank > best[0]:
                best = (rank, entry)
        return best[1] if best else None

    def providers_of(self, model: str) -> frozenset[str]:
        """The providers the model entries matching ``model`` name, at any time (an entry for
        any provider names none)."""
        return frozenset(
            entry.provider
            for entry in self.models
            if entry.provider is not None and _matches(None, entry.model, "", model)
        )

    def multiplier(
        self, provider: str, models: tuple[str, ...], service_tier: str, ts: datetime
    ) -> Decimal:
        """Service tier x off-peak x discount for one call (1 when nothing applies).

        ``models``: the call's names (response, request); a window or discount matching any
        of them applies.
        """
        factor = Decimal(1)
        tier = self.tier_multiplier(provider, service_tier) if service_tier else None
        if tier is not None:
            factor *= tier
        for window in self.off_peak:
            if _matches_any(window.provider, window.model, provider, models) and window.active(ts):
                factor *= window.multiplier
                break
        best: tuple | None = None
        for discount in self.discounts:
            if not _matches_any(discount.provider, discount.model, provider, models):
                continue
            if not _in_effect(discount.effective_from, discount.effective_until, ts):
                continue
            # Most specific first (a model named, exactly rather than by a glob; a provider
            # named); of equally specific ones the latest started wins (a renegotiated one).
            rank = (
                discount.model is not None,
                discount.model is not None and not _is_glob(discount.model),
                discount.provider is not None,
                discount.effective_from or _EPOCH,
            )
            if best is None or rank > best[0]:
                best = (rank, discount)
        if best is not None:
            factor *= best[1].factor
        return factor

    def tier_multiplier(self, provider: str, service_tier: str) -> Decimal | None:
        """The ``service_tiers`` multiplier of a call's tier; None: the overlay gives none."""
        return _for_provider(self.service_tiers, provider, service_tier)

    def speed_multiplier(self, provider: str, speed: str) -> Decimal | None:
        """The ``speeds`` multiplier of a call's speed mode; None: the overlay gives none."""
        return _for_provider(self.speeds, provider, speed)

    def geo_multiplier(self, provider: str, inference_geo: str) -> Decimal | None:
        """The ``inference_geos`` multiplier of where a call ran; None: the overlay gives none."""
        return _for_provider(self.inference_geos, provider, inference_geo)

    def traffic_multiplier(self, provider: str, traffic_type: str) -> Decimal | None:
        """The ``traffic_types`` multiplier of how a call was served; None: the overlay gives
        none."""
        return _for_provider(self.traffic_types, provider, traffic_type)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _for_provider(multipliers: Mapping[str, Decimal], provider: str, mode: str) -> Decimal | None:
    """``provider/mode``'s multiplier, else ``mode``'s (every provider's), else None."""
    mode = mode.lower()
    found = multipliers.get(f"{provider.lower()}/{mode}")
    return multipliers.get(mode) if found is None else found


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _matches(want_provider: str | None, want_model: str | None, provider: str, model: str) -> bool:
    if want_provider is not None and want_provider != provider:
        return False
    if want_model is None:
        return True
    if _is_glob(want_model):
        return fnmatch.fnmatchcase(model.lower(), want_model.lower())
    return want_model.lower() == model.lower()


def _matches_any(
    want_provider: str | None, want_model: str | None, provider: str, models: tuple[str, ...]
) -> bool:
    return any(_matches(want_provider, want_model, provider, model) for model in models)


def _in_effect(start: datetime | None, until: datetime | None, ts: datetime) -> bool:
    return (start is None or ts >= start) and (until is None or ts < until)


# -- loading -------------------------------------------------------------------------------------
def load_overlay(path: str) -> Overlay:
    """Read and validate an overlay file (raises OverlayError with the reason)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise OverlayError(f"cannot read price overlay {path}: {exc}") from exc
    return parse_overlay(raw, source=path)


def parse_overlay(raw: bytes | str, source: str = "overlay") -> Overlay:
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        document = yaml.safe_load(data) or {}
    except yaml.YAMLError as exc:
        raise OverlayError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise OverlayError(f"{source} must be a mapping")
    unknown = sorted(set(document) - set(_SECTIONS))
    if unknown:
        raise OverlayError(
            f"{source}: unknown sections {unknown}; known: {', '.join(sorted(_SECTIONS))}"
        )
    models = tuple(
        _model(item, f"{source}: models[{i}]")
        for i, item in enumerate(_list(document, "models", source))
    )
    discounts = tuple(
        _discount(item, f"{source}: discounts[{i}]")
        for i, item in enumerate(_list(document, "discounts", source))
    )
    windows = tuple(
        _off_peak(item, f"{source}: off_peak[{i}]")
        for i, item in enumerate(_list(document, "off_peak", source))
    )
    tiers = _multipliers(document, "service_tiers", "a tier name", source)
    speeds = _multipliers(document, "speeds", "a speed mode", source)
    geos = _multipliers(document, "inference_geos", "an inference geography", source)
    traffic = _multipliers(document, "traffic_types", "a traffic type", source)
    digest = hashlib.sha256(data).hexdigest()[:12]
    return Overlay(models, discounts, tiers, windows, digest, speeds, geos, traffic)


_SECTIONS = (
    "models",
    "discounts",
    "service_tiers",
    "speeds",
    "inference_geos",
    "traffic_types",
    "off_peak",
)


def _multipliers(
    document: Mapping[str, Any], section: str, what: str, source: str
) -> dict[str, Decimal]:
    raw = document.get(section) or {}
    if not isinstance(raw, dict):
        raise OverlayError(f"{source}: {section} must map {what} to a multiplier")
    return {
        str(name).lower(): _money(value, f"{source}: {section}.{name}")
        for name, value in raw.items()
    }


def _list(document: Mapping[str, Any], key: str, source: str) -> list:
    value = document.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise OverlayError(f"{source}: {key} must be a list of mappings")
    return value


def _check_keys(item: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise OverlayError(f"{where}: unknown fields {unknown}; allowed: {sorted(allowed)}")


def _money(value: Any, where: str, *, required: bool = True) -> Decimal:
    if value is None:
        if required:
            raise OverlayError(f"{where} is required")
        return Decimal(0)
    if isinstance(value, bool):
        raise OverlayError(f"{where} must be a number, got {value!r}")
    try:
        # repr() of a float is its shortest decimal spelling: 0.1 -> Decimal("0.1").
        amount = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        raise OverlayError(f"{where} must be a number, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise OverlayError(f"{where} must be a non-negative number, got {value!r}")
    return amount


def _when(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise OverlayError(f"{where} must be a date (2026-12-01) or time, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _name(item: Mapping[str, Any], key: str, where: str, *, required: bool) -> str | None:
    value = item.get(key)
    if value is None or value == "":
        if required:
            raise OverlayError(f"{where}: {key} is required")
        return None
    return str(value)


def _model(item: Mapping[str, Any], where: str) -> ModelPriceEntry:
    _check_keys(
        item,
        {
            "provider",
            "model",
            "input_per_mtok",
            "output_per_mtok",
            "cache_read_per_mtok",
            "cache_write_per_mtok",
            "per_request",
            "web_search_per_k",
            "file_search_per_k",
            "effective_from",
            "effective_until",
        },
        where,
    )
    if not any(k in item for k in ("input_per_mtok", "output_per_mtok", "per_request")):
        raise OverlayError(f"{where}: give input_per_mtok, output_per_mtok or per_request")
    input_price = _money(item.get("input_per_mtok"), f"{where}.input_per_mtok", required=False)
    start = _when(item.get("effective_from"), f"{where}.effective_from")
    until = _when(item.get("effective_until"), f"{where}.effective_until")
    if start and until and until <= start:
        raise OverlayError(f"{where}: effective_until must be after effective_from")
    return ModelPriceEntry(
        model=_name(item, "model", where, required=True) or "",
        provider=_name(item, "provider", where, required=False),
        input_per_mtok=input_price,
        output_per_mtok=_money(
            item.get("output_per_mtok"), f"{where}.output_per_mtok", required=False
        ),
        cache_read_per_mtok=_money(
            item.get("cache_read_per_mtok", input_price), f"{where}.cache_read_per_mtok"
        ),
        cache_write_per_mtok=_money(
            item.get("cache_write_per_mtok", input_price), f"{where}.cache_write_per_mtok"
        ),
        per_request=_money(item.get("per_request"), f"{where}.per_request", required=False),
        effective_from=start,
        effective_until=until,
        web_search_per_k=_optional_money(item, "web_search_per_k", where),
        file_search_per_k=_optional_money(item, "file_search_per_k", where),
    )


def _optional_money(item: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    """A price the entry may leave out: None (no price), never a silent 0."""
    if item.get(key) is None:
        return None
    return _money(item[key], f"{where}.{key}")


def _discount(item: Mapping[str, Any], where: str) -> Discount:
    _check_keys(item, {"provider", "model", "percent", "effective_from", "effective_until"}, where)
    percent = _money(item.get("percent"), f"{where}.percent")
    if percent > 100:
        raise OverlayError(f"{where}.percent must be 0-100, got {percent}")
    return Discount(
        provider=_name(item, "provider", where, required=False),
        model=_name(item, "model", where, required=False),
        percent=percent,
        effective_from=_when(item.get("effective_from"), f"{where}.effective_from"),
        effective_until=_when(item.get("effective_until"), f"{where}.effective_until"),
    )


def _clock(value: Any, where: str) -> time:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 16:30 as a sexagesimal integer (990).
        return time(value // 60 % 24, value % 60)
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise OverlayError(f'{where} must be a UTC time such as "16:30", got {value!r}') from None


def _off_peak(item: Mapping[str, Any], where: str) -> OffPeak:
    _check_keys(item, {"provider", "model", "start", "end", "multiplier"}, where)
    for key in ("start", "end"):
        if key not in item:
            raise OverlayError(f"{where}: {key} is required")
    return OffPeak(
        provider=_name(item, "provider", where, required=False),
        model=_name(item, "model", where, required=False),
        start=_clock(item["start"], f"{where}.start"),
        end=_clock(item["end"], f"{where}.end"),
        multiplier=_money(item.get("multiplier"), f"{where}.multiplier"),
    )
