"""Reconcile stored cost with a provider's own cost export, by UTC day and model.

Accepted CSV layouts (recognised by their header; money in USD as decimal strings; the cost
APIs' JSON is read too, see ``_read_json``):

OpenAI (organization Costs export, one row per day, project and line item)::

    start_time_iso,end_time_iso,organization_id,project_id,project_name,line_item,amount_value,amount_currency
    2026-11-20T00:00:00+00:00,2026-11-21T00:00:00+00:00,org-1,proj_1,Prod,"gpt-4o-mini-2024-07-18, input",0.1234,usd

    ``line_item`` is "<model>, <kind>" (input, cached input, output, batch input, ...). The
    dashboard's Export writes the same fields in another order, with ``start_time``/``end_time``
    (unix seconds) in front; a day without cost has an empty amount (skipped), and an export not
    grouped by line item has an empty ``line_item``: its days are compared over all models.

Anthropic (Console cost export, one row per day, model, workspace, key and token type; any CSV
with ``usage_date_utc``, ``model`` and ``cost_usd`` reads the same)::

    usage_date_utc,model,workspace,api_key,usage_type,context_window,token_type,cost_usd,list_price_usd,cost_type,inference_geo,speed,api_key_id,api_key_status
    2026-11-20,Claude Sonnet 4.5,Default,prod,message,≤ 200k,output,0.45,0.45,token,global,,apikey_1,active

Model names are compared without their date suffix (``gpt-4o-2024-08-06`` = ``gpt-4o``), and
Anthropic's display names as API ids (``Claude Sonnet 4.5`` = ``claude-sonnet-4-5``).
Each (day, model) gets the difference (provider - stored) and its likely explanation:
unpriced calls, spend the processor never saw (unattributed), failed-but-billed calls, or a
price mismatch. Searches are compared apart, by day and kind (``(web searches)``,
``(file searches)``), with the exports' search lines, which name no model; a model's row holds
the rest of its calls' cost, as its token lines do. A call's sub-inferences on another model
(an Anthropic advisor's, ``llm_calls.sub_usage``) are compared under that model, where the
export bills them: the advisor model's row counts the call and holds their cost.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from llm_margin.processor.reports.money import exact, money_str
from llm_margin.processor.reports.views import run_sql

OPENAI_COLUMNS = {"start_time_iso", "line_item", "amount_value"}
ANTHROPIC_COLUMNS = {"usage_date_utc", "model", "cost_usd"}
COLUMNS = (
    "day",
    "provider",
    "model",
    "provider_cost_usd",
    "stored_cost_usd",
    "difference_usd",
    "restated_cost_usd",
    "stored_calls",
    "unpriced_calls",
    "failed_calls",
    "unattributed_calls",
    "explanation",
)
# A snapshot's date (gpt-4o-2024-08-06, claude-sonnet-4-5-20250929, OpenAI's older MMDD:
# gpt-3.5-turbo-0125, gpt-4-0613) or an alias for the newest (claude-3-5-haiku-latest).
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)$")
# Anthropic's aliases of a whole version: claude-sonnet-4-0 is claude-sonnet-4-20250514.
_CLAUDE_DOT_ZERO = re.compile(r"^(claude-[a-z]+-\d+)-0$")
_VERSION = re.compile(r"\d+(\.\d+)?")
# The model of an export row that names none (OpenAI without line items): the day is compared
# with stored cost of every model that day.
ALL_MODELS = "(all models)"
# The searches of a day, one kind per row. Exports bill them on tool lines of their own that
# name no model (OpenAI ``web search tool calls``, ``file search tool calls``; Anthropic
# cost_type ``web_search``), so stored calls' search share (llm_calls.web_search_cost_usd,
# file_search_cost_usd, the `part` of stored_cost_by_day_model.sql) is compared with those
# lines by day, and only the rest of their cost with the model's token lines.
WEB_SEARCHES = "(web searches)"
FILE_SEARCHES = "(file searches)"
SEARCHES = {"web_search": WEB_SEARCHES, "file_search": FILE_SEARCHES}
_SEARCH_OVERLAY_FIELD = {WEB_SEARCHES: "web_search_per_k", FILE_SEARCHES: "file_search_per_k"}


class ProviderUsageError(ValueError):
    """The file is not a provider export we can read; the message says where and why."""


def normalise_model(name: str) -> str:
    name = (name or "").strip().lower()
    if name.startswith("("):  # not a model: ALL_MODELS, or a tool / storage charge
        return name
    if " " in name:  # a display name (Anthropic's Console export): to the API id's form
        name = _display_to_id(name.split())
    return _CLAUDE_DOT_ZERO.sub(r"\1", _DATE_SUFFIX.sub("", name))


def search_line(model: str) -> str | None:
    """WEB_SEARCHES or FILE_SEARCHES when an export's tool line (a name in parentheses, see
    :func:`line_item_model`) bills searches of that kind, else None."""
    if model in SEARCHES.values():
        return model
    if not model.startswith("("):
        return None
    name = model.strip("()").replace("_", " ").strip()
    if name.startswith("web search"):  # OpenAI "web search tool calls", Anthropic web_search
        return WEB_SEARCHES
    if name.startswith("file search"):
        return FILE_SEARCHES
    return None


def _display_to_id(words: list[str]) -> str:
    """``claude sonnet 4.5`` -> ``claude-sonnet-4-5``; Claude 3.x ids put the version first
    (``claude haiku 3.5`` and ``claude 3.5 haiku`` -> ``claude-3-5-haiku``); a trailing date
    (``claude 3.5 sonnet 2024-10-22``) goes, as dates do from ids."""
    if words and _DATE_SUFFIX.fullmatch("-" + words[-1]):
        words = words[:-1]
    if len(words) < 3 or words[0] != "claude":
        return "-".join(words)
    versions = [w for w in words[1:] if _VERSION.fullmatch(w)]
    if len(versions) != 1:
        return "-".join(words)
    family = [w for w in words[1:] if w != versions[0]]
    version = versions[0].replace(".", "-")
    if int(versions[0].split(".")[0]) < 4:
        return "-".join(["claude", version, *family])
    return "-".join(["claude", *family, version])


def _amount(text: str, where: str) -> Decimal:
    try:
        value = Decimal((text or "").strip())
    except InvalidOperation as exc:
        raise ProviderUsageError(f"{where}: {text!r} is not an amount") from exc
    if not value.is_finite():
        raise ProviderUsageError(f"{where}: {text!r} is not an amount")
    return value


@dataclass
class ProviderExport:
    provider: str
    totals: dict[tuple[date, str], Decimal]  # USD by (UTC day, normalised model)
    # The most the export's own rounding explains per (day, model): half a unit in the last
    # place the file writes amounts to, once per row summed (the Console rounds each to cents).
    rounding: dict[tuple[date, str], Decimal]
    # Every UTC day the export covers, those it lists without cost included (OpenAI's export
    # and cost API list each day of the range): stored calls on them are compared too.
    days: frozenset[date] = frozenset()


def read_provider_usage(path: str) -> tuple[str, dict[tuple[date, str], Decimal]]:
    """(provider, cost by (day, normalised model)) from an OpenAI or Anthropic cost export."""
    export = read_provider_export(path)
    return export.provider, export.totals


def _summarise(
    provider: str, rows: list[tuple[date, str, Decimal]], days: set[date]
) -> ProviderExport:
    totals: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    counts: dict[tuple[date, str], int] = defaultdict(int)
    places = 0
    for day, model, amount in rows:
        key = (day, normalise_model(model) or ALL_MODELS)
        totals[key] += amount
        counts[key] += 1
        places = max(places, -int(amount.as_tuple().exponent))
    half_unit = Decimal(5).scaleb(-places - 1)
    return ProviderExport(
        provider,
        dict(totals),
        {k: n * half_unit for k, n in counts.items()},
        frozenset(days | {day for day, _, _ in rows}),
    )


@exact
def read_provider_export(path: str) -> ProviderExport:
    """An OpenAI or Anthropic cost CSV, or the JSON their cost APIs return (see
    :func:`_read_json`).

    Header names are matched without regard to case or surrounding spaces; rows whose fields
    are all empty (what spreadsheets leave at the end) are skipped; errors name the file's
    physical line.
    """
    rows: list[tuple[date, str, Decimal]] = []
    days: set[date] = set()  # those listed without cost too
    try:
        with open(path, encoding="utf-8-sig") as handle:
            start = handle.read(4096).lstrip()
        if start[:1] in ("{", "["):
            return _read_json(path)
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [name.strip().lower() for name in next(reader, [])]
            columns = set(header)
            if OPENAI_COLUMNS <= columns:
                provider = "openai"
            elif ANTHROPIC_COLUMNS <= columns:
                provider = "anthropic"
            else:
                raise ProviderUsageError(
                    f"{path}: unknown layout (columns {sorted(columns)}); expected an OpenAI "
                    f"export with {sorted(OPENAI_COLUMNS)} or an Anthropic one with "
                    f"{sorted(ANTHROPIC_COLUMNS)}"
                )
            for fields in reader:
                if not any(field.strip() for field in fields):
                    continue
                where = f"{path} line {reader.line_num}"
                row = dict(zip(header, fields, strict=False))
                parsed = _usage_row(provider, row, where)
                if isinstance(parsed, date):  # a day without cost
                    days.add(parsed)
                elif parsed is not None:
                    rows.append(parsed)
    except OSError as exc:
        raise ProviderUsageError(f"cannot read {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ProviderUsageError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); export it as CSV UTF-8"
        ) from exc
    except csv.Error as exc:
        raise ProviderUsageError(f"{path}: not a readable CSV file: {exc}") from exc
    return _summarise(provider, rows, days)


def _read_json(path: str) -> ProviderExport:
    """Pages of OpenAI's ``GET /v1/organization/costs`` or Anthropic's
    ``GET /v1/organizations/cost_report`` saved as they came: one page, a JSON array of pages,
    or one page per line. OpenAI buckets start at ``start_time`` (unix seconds) and amounts are
    USD numbers; Anthropic buckets start at ``starting_at`` (RFC 3339) and amounts are decimal
    strings in cents (``"123.45"`` is 1.2345 USD). Without ``group_by`` line_item / description
    there is no model: each day is compared whole."""
    with open(path, encoding="utf-8-sig") as handle:
        text = handle.read()
    try:
        documents = [json.loads(text, parse_float=Decimal)]
    except json.JSONDecodeError:
        try:  # one page per line
            documents = [
                json.loads(line, parse_float=Decimal) for line in text.splitlines() if line.strip()
            ]
        except json.JSONDecodeError as exc:
            raise ProviderUsageError(f"{path}: not readable JSON: {exc}") from exc
    pages = [p for d in documents for p in (d if isinstance(d, list) else [d])]
    if not pages or not all(isinstance(p, dict) and isinstance(p.get("data"), list) for p in pages):
        raise ProviderUsageError(
            f"{path}: not a page of OpenAI's or Anthropic's cost API (an object with 'data')"
        )
    if pages[-1].get("has_more"):
        raise ProviderUsageError(
            f"{path}: the last page says has_more: save every page (follow next_page)"
        )
    buckets = [b for p in pages for b in p["data"]]
    provider = "anthropic" if buckets and "starting_at" in buckets[0] else "openai"
    rows: list[tuple[date, str, Decimal]] = []
    days: set[date] = set()  # buckets without results are days without cost
    for b_index, bucket in enumerate(buckets, 1):
        try:
            days.add(_bucket_day(provider, bucket))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ProviderUsageError(f"{path} bucket {b_index}: {exc!r}") from exc
        for r_index, result in enumerate(bucket.get("results") or [], 1):
            where = f"{path} bucket {b_index} result {r_index}"
            try:
                rows.append(_json_result(provider, bucket, result, where))
            except ProviderUsageError:
                raise
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ProviderUsageError(f"{where}: {exc!r}") from exc
    return _summarise(provider, rows, days)


def _bucket_day(provider: str, bucket: dict[str, Any]) -> date:
    """The UTC day a cost API bucket starts: OpenAI's ``start_time`` (unix seconds),
    Anthropic's ``starting_at`` (RFC 3339)."""
    if provider == "openai":
        return datetime.fromtimestamp(int(bucket["start_time"]), timezone.utc).date()
    start = datetime.fromisoformat(str(bucket["starting_at"]).replace("Z", "+00:00"))
    return start.astimezone(timezone.utc).date()


def _json_result(
    provider: str, bucket: dict[str, Any], result: dict[str, Any], where: str
) -> tuple[date, str, Decimal]:
    day = _bucket_day(provider, bucket)
    if provider == "openai":
        amount = result.get("amount") or {}
        currency = str(amount.get("currency") or "usd").lower()
        value = _amount(str(amount.get("value", 0)), where)
        model = line_item_model(result.get("line_item") or "")
    else:
        currency = str(result.get("currency") or "usd").lower()
        value = _amount(str(result["amount"]), where).scaleb(-2)  # cents, digits as written
        cost_type = str(result.get("cost_type") or "").lower()
        model = f"({cost_type})" if cost_type not in ("", "tokens") else result.get("model") or ""
    if currency != "usd":
        raise ProviderUsageError(f"{where}: currency {currency!r} is not usd")
    return day, model, value


def _usage_row(
    provider: str, row: dict[str, str], where: str
) -> tuple[date, str, Decimal] | date | None:
    """(UTC day, model, amount in USD) of one export row; for a row without an amount (OpenAI's
    export lists every day of the range, those without cost with empty fields) its day, or
    None when it names none."""
    try:
        day_text = (
            row["start_time_iso" if provider == "openai" else "usage_date_utc"] or ""
        ).strip()
        if not (row["amount_value" if provider == "openai" else "cost_usd"] or "").strip():
            return _row_day(provider, day_text) if day_text else None
        day = _row_day(provider, day_text)
        if provider == "openai":
            currency = (row.get("amount_currency") or "usd").strip().lower()
            if currency != "usd":
                raise ProviderUsageError(f"{where}: currency {currency!r} is not usd")
            return day, line_item_model(row["line_item"]), _amount(row["amount_value"], where)
        cost_type = (row.get("cost_type") or "").strip().lower()
        if cost_type not in ("", "token", "tokens"):  # web_search, code_execution, ...
            return day, f"({cost_type})", _amount(row["cost_usd"], where)
        return day, row.get("model") or "", _amount(row["cost_usd"], where)
    except ProviderUsageError:
        raise
    except KeyError as exc:  # a short row
        raise ProviderUsageError(f"{where}: no value for column {exc}") from exc
    except (ValueError, AttributeError) as exc:
        raise ProviderUsageError(f"{where}: {exc}") from exc


def _row_day(provider: str, text: str) -> date:
    """The UTC day of an export row: OpenAI's ``start_time_iso`` whatever offset it has,
    Anthropic's ``usage_date_utc``."""
    if provider == "openai":
        start = datetime.fromisoformat(text)
        if start.tzinfo is not None:  # the UTC day, whatever offset the export uses
            start = start.astimezone(timezone.utc)
        return start.date()
    return date.fromisoformat(text[:10])


def line_item_model(line_item: str) -> str:
    """The model of an OpenAI cost line item: ``gpt-4o-2024-08-06, input``,
    ``priority | gpt-5-2025-08-07, output, long context`` (a service tier in front),
    ``gpt-audio-mini-2025-10-06 audio, input`` (a modality after the model). A line item
    without ``, <kind>`` is not a model's tokens (``web search tool calls``, ``Vector
    storage``): it is kept in parentheses. Empty (not grouped by line item): empty."""
    head, comma, _ = (line_item or "").partition(",")
    head = head.strip()
    if not comma:
        return f"({head.lower()})" if head else ""
    head = head.rsplit("|", 1)[-1].strip()
    return head.split()[0] if head else ""


def explain(
    provider_cost: Decimal | None,
    stored: dict[str, Any] | None,
    tolerance: Decimal,
    model: str = "",
    rounding: Decimal = Decimal(0),
    provider: str = "",
) -> str:
    """Why provider and stored cost differ for one (day, model). Pure; table-tested.

    ``rounding``: how much of a difference the export's own rounding explains (it widens the
    tolerance, and is named when it was needed). ``provider``: the export's, named in a fix.

    After `llm-margin reprice`, the restated cost (``restated_cost_usd``) is what is compared:
    a model priced after the fact then matches, and the as-charged cost is named beside it."""
    searches = model.strip("()") if model in SEARCHES.values() else ""
    if stored is None and searches:
        return (
            f"unattributed: the provider billed {searches} of calls the processor never saw "
            "(uninstrumented code, another app on the same key, lost spans, or a Chat "
            "Completions search model, whose per-call search fee is not recorded)"
        )
    if stored is None and model.startswith("(") and model != ALL_MODELS:
        return (
            "not a model's tokens: a tool or storage charge (web search, code execution, file "
            "storage, ...) that the processor does not record"
        )
    if stored is None:
        return (
            "unattributed: the provider billed calls the processor never saw (uninstrumented "
            "code, another app on the same key, or lost spans)"
        )
    if provider_cost is None:
        return "not in the provider export (another account or key, or an incomplete export)"
    charged_cost: Decimal = stored["stored_cost_usd"]
    stored_cost: Decimal = stored.get("restated_cost_usd", charged_cost)
    unpriced = stored.get("restated_unpriced_calls", stored["unpriced_calls"])
    difference = provider_cost - stored_cost
    notes = []
    if stored_cost != charged_cost or unpriced != stored["unpriced_calls"]:
        notes.append(
            f"restated by reprice: {money_str(stored_cost)} USD "
            f"(as charged {money_str(charged_cost)} USD)"
        )
    if stored["unattributed_calls"]:
        notes.append(f"{stored['unattributed_calls']} calls have no customer (cost counted)")
    if tolerance < abs(difference) <= rounding:
        notes.append(f"within the export's rounding (±{money_str(rounding)} USD)")
    if abs(difference) <= max(tolerance, rounding):
        return "; ".join(["match"] + notes)
    reasons = []
    if unpriced and difference > 0:
        # What prices them: a model entry (a search row's: its search price), except for the
        # calls in a mode a model entry would not price, each told its multiplier (the
        # reasons `prices check` gives). Counted on search rows too: a priority call with
        # searches is unpriced for its tier, not for a missing search price.
        if searches:
            fix = other = f"give the model's overlay entry `{_SEARCH_OVERLAY_FIELD[model]}`"
        else:
            fix, other = "add the model to the price overlay", "add the model"
        modes = _mode_fixes(
            provider,
            stored.get("restated_unpriced_premium_tier_calls", 0),
            stored.get("restated_unpriced_speed_calls", 0),
            stored.get("restated_unpriced_geo_calls", 0),
        )
        advised = stored.get("restated_unpriced_advisor_calls", 0)
        if advised:
            # The advisor's model may be the one the book cannot price: a model entry for
            # this row's model would not price those calls.
            models = ", ".join(sorted(stored.get("restated_unpriced_advisor_models") or ()))
            modes.append(
                f"{advised} consulted an advisor on another model ({models}): if the price "
                "book has no price for it, add that model, not this one (`llm-margin prices "
                "check` names it)"
            )
        what = f"{unpriced} calls with {searches}" if searches else f"{unpriced} calls"
        how = f"{'; '.join(modes)}; any other, {other};" if modes else f"{fix},"
        reasons.append(f"unpriced: {what} stored without a price ({how} then `llm-margin reprice`)")
    if stored["failed_calls_without_usage"] and difference > 0:
        reasons.append(
            f"failed-but-billed: {stored['failed_calls_without_usage']} failed calls were "
            "stored without usage, the provider may have billed them"
        )
    if not reasons:
        share = (difference * 100 / stored_cost).quantize(Decimal("0.01")) if stored_cost else None
        reasons.append(
            "price mismatch: "
            + (
                f"provider charged {share}% more than stored"
                if share is not None and share > 0
                else f"provider charged {-share}% less than stored"
                if share is not None
                else "stored cost is 0"
            )
            + " (check the price book version, negotiated discounts, and the multipliers of "
            "service tiers, speed modes and inference geographies)"
        )
    return "; ".join(reasons + notes)


def _mode_fixes(provider: str, premium_calls: int, speed_calls: int, geo_calls: int) -> list[str]:
    """How to price the unpriced calls of each mode a model entry would not price."""
    fixes = []
    if premium_calls:
        fixes.append(
            f"{premium_calls} with no priority-tier price: give the tier a multiplier "
            f"under `service_tiers:` in the price overlay (`{provider or 'openai'}/priority`)"
        )
    if speed_calls:
        fixes.append(
            f"{speed_calls} in a speed mode the price book has no price for, such as "
            "Anthropic fast mode: give it a multiplier under `speeds:` in the price overlay "
            f"(`{provider or 'anthropic'}/fast`)"
        )
    if geo_calls:
        fixes.append(
            f"{geo_calls} run in an inference geography the price book has no multiplier "
            "for, such as Anthropic's US-only inference: give it one under "
            '`inference_geos:` in the price overlay (`anthropic/us: "1.1"`)'
        )
    return fixes


def day_overlaps(since: datetime | None, until: datetime | None, day: date) -> bool:
    """Whether the UTC day overlaps [since, until) (None: open). Days are compared whole."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return (since is None or start + timedelta(days=1) > since) and (until is None or start < until)


@exact
def reconcile(
    reader: Any,
    path: str,
    tolerance: Decimal = Decimal("0.01"),
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """``since``/``until``: compare only the UTC days overlapping that period (default: every
    day of the export)."""
    export = read_provider_export(path)
    provider, billed, rounding = export.provider, export.totals, dict(export.rounding)
    if not export.days:
        raise ProviderUsageError(f"{path}: no usage rows")
    # The days compared: every day the export covers (those it lists without cost too, where
    # stored calls are not in the export) that overlaps the period.
    days = {day for day in export.days if day_overlaps(since, until, day)}
    if not days:
        raise ProviderUsageError(f"{path}: no usage rows in the period given by --since/--until")
    # Search lines under one name per kind of search (what stored searches are compared with).
    folded: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    folded_rounding: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for (day, model), cost in billed.items():
        if day in days:
            key = (day, search_line(model) or model)
            folded[key] += cost
            folded_rounding[key] += rounding[(day, model)]
    billed, rounding = dict(folded), dict(folded_rounding)
    first, last = min(days), max(days)
    since = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    until = datetime(last.year, last.month, last.day, tzinfo=timezone.utc) + timedelta(days=1)
    # An export that names no model for a day (OpenAI's without line items) is compared by day:
    # every model's cost that day, on both sides.
    by_day = {day for day, model in billed if model == ALL_MODELS}
    if by_day:
        merged: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
        merged_rounding: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
        for (day, model), cost in billed.items():
            key = (day, ALL_MODELS if day in by_day else model)
            merged[key] += cost
            merged_rounding[key] += rounding[(day, model)]
        billed, rounding = dict(merged), dict(merged_rounding)
    stored: dict[tuple[date, str], dict[str, Any]] = {}
    for row in run_sql(
        reader, "queries/stored_cost_by_day_model.sql", {"since": since, "until": until}
    ):
        if row["provider"] and row["provider"] != provider:
            continue
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        # tokens; a kind of search; or sub_usage: a model the call's advisor ran on, billed
        # under that model (stored_cost_by_day_model.sql)
        part = row["part"]
        if day in by_day:
            key = (day, ALL_MODELS)
        elif part in ("tokens", "sub_usage"):
            key = (day, normalise_model(row["model"]))
        else:
            key = (day, SEARCHES[part])
        entry = stored.setdefault(
            key,
            {
                "stored_cost_usd": Decimal(0),
                "restated_cost_usd": Decimal(0),
                "calls": 0,
                "restated_unpriced_calls": 0,
                "unpriced_calls": 0,
                "failed_calls": 0,
                "failed_calls_without_usage": 0,
                "unattributed_calls": 0,
                "restated_unpriced_speed_calls": 0,
                "restated_unpriced_premium_tier_calls": 0,
                "restated_unpriced_geo_calls": 0,
                "restated_unpriced_advisor_calls": 0,
                "restated_unpriced_advisor_models": set(),
            },
        )
        entry["stored_cost_usd"] += Decimal(str(row["stored_cost_usd"]))
        entry["restated_cost_usd"] += Decimal(str(row["restated_cost_usd"]))
        if part != "tokens" and key[1] == ALL_MODELS:
            continue  # its call is counted with its tokens part; only its cost adds up here
        for name in (
            "calls",
            "unpriced_calls",
            "failed_calls",
            "failed_calls_without_usage",
            "unattributed_calls",
            "restated_unpriced_calls",
            "restated_unpriced_speed_calls",
            "restated_unpriced_premium_tier_calls",
            "restated_unpriced_geo_calls",
            "restated_unpriced_advisor_calls",
        ):
            entry[name] += int(row[name])
        entry["restated_unpriced_advisor_models"].update(row["restated_unpriced_advisor_models"])
    rows = []
    for key in sorted(set(billed) | set(stored)):
        provider_cost = billed.get(key)
        entry = stored.get(key)
        stored_cost = entry["stored_cost_usd"] if entry else Decimal(0)
        rows.append(
            {
                "day": key[0].isoformat(),
                "provider": provider,
                "model": key[1],
                "provider_cost_usd": provider_cost if provider_cost is not None else Decimal(0),
                "stored_cost_usd": stored_cost,
                "difference_usd": (provider_cost or Decimal(0)) - stored_cost,
                "restated_cost_usd": entry["restated_cost_usd"] if entry else Decimal(0),
                "stored_calls": entry["calls"] if entry else 0,
                "unpriced_calls": entry["unpriced_calls"] if entry else 0,
                "failed_calls": entry["failed_calls"] if entry else 0,
                "unattributed_calls": entry["unattributed_calls"] if entry else 0,
                "explanation": explain(
                    provider_cost,
                    entry,
                    tolerance,
                    key[1],
                    rounding.get(key, Decimal(0)),
                    provider,
                ),
            }
        )
    return provider, rows


@exact
def total_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"day": "TOTAL"}
    for column in ("provider_cost_usd", "stored_cost_usd", "difference_usd", "restated_cost_usd"):
        total[column] = sum((r[column] for r in rows), Decimal(0))
    for column in ("stored_calls", "unpriced_calls", "failed_calls", "unattributed_calls"):
        total[column] = sum(r[column] for r in rows)
    return total
