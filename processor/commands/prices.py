"""`llm-margin prices show MODEL` / `prices check`: what the price book says, and what it cannot price."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from decimal import Decimal

from llm_margin.processor.commands._common import (
    CommandError,
    add_read_options,
    open_reader,
    period,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prices",
        help="show the price book for a model; list stored models it cannot price",
        description="Inspect the price book (genai-prices data plus your overlay).",
    )
    actions = parser.add_subparsers(dest="prices_command", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show",
        help="what the price book says for a model",
        description="The prices the price book applies to a model at a time (--at), for calls "
        "at a service tier or speed mode, run in an inference geography or served as a "
        "traffic type (--service-tier, --speed, --inference-geo, --traffic-type): per request "
        "and per "
        "million input, output and cache tokens, their source (genai-prices or your overlay) "
        "and the price version stored with each call.",
    )
    show.add_argument("model", help="model name as your calls report it, e.g. gpt-4o-mini")
    show.add_argument(
        "--provider",
        default="",
        help="provider (openai, anthropic, ...); with --service-tier, --speed, "
        "--inference-geo or --traffic-type, default: the one the price book resolves the model "
        "name to (refused when several or none)",
    )
    show.add_argument("--at", help="price at this date/time (UTC; default now)")
    show.add_argument(
        "--service-tier",
        default="",
        help="price of calls at this service tier (flex, priority, ...; default: standard)",
    )
    show.add_argument(
        "--speed", default="", help="price of calls at this speed mode (fast; default: standard)"
    )
    show.add_argument(
        "--inference-geo",
        default="",
        help="price of calls run in this inference geography (Anthropic data residency: us; "
        "default: global, the standard price)",
    )
    show.add_argument(
        "--traffic-type",
        default="",
        help="price of calls served as this traffic type (Vertex AI: provisioned_throughput, "
        "paid by its subscription; default: on_demand, the per-token price)",
    )
    show.add_argument("--price-overlay", help="price overlay YAML to apply")
    show.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="default table"
    )
    show.set_defaults(handler=run_show)
    check = actions.add_parser(
        "check",
        help="models in stored calls the price book cannot price (calls, tokens, searches)",
        description="List the models of stored calls the price book cannot price, with their "
        "calls, tokens and searches and the reason (no price for the model, or none for the "
        "web or file searches its calls made, the speed mode they ran at, such as Anthropic "
        "fast mode, the premium service tier, such as priority, the inference geography, "
        "such as Anthropic's US-only inference, the traffic type, such as Vertex AI's "
        "Provisioned Throughput, or the model of an advisor they consulted); exit "
        "status 1 when there are any (for CI and cron).",
    )
    add_read_options(check)
    check.add_argument("--price-overlay", help="price overlay YAML to apply")
    check.set_defaults(handler=run_check)


def _book(path: str | None):
    from llm_margin.processor.pricing import OverlayError, PriceBook

    try:
        return PriceBook.from_file(path)
    except OverlayError as exc:
        raise CommandError(str(exc)) from exc


def _at(text: str | None) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--at must be a date or time such as 2026-11-01, got {text!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def run_show(args: argparse.Namespace) -> int:
    from llm_margin.processor.pricing.explain import explain_model
    from llm_margin.processor.reports.render import render

    book = _book(args.price_overlay)
    at = _at(args.at)
    asked = [what for what, value in _modes(args) if value]
    if asked and not args.provider:
        # A mode's price depends on the provider: OpenAI's and Gemini's priority is a premium
        # (unpriced without a price for it), Anthropic's is not; `openai/flex` multiplies
        # OpenAI's calls only (`anthropic/fast` Anthropic's fast-mode ones, `anthropic/us` its
        # US-only ones, `google/provisioned_throughput` Vertex AI's Provisioned Throughput ones).
        # Without one, no provider-named multiplier applies: the standard price would be shown.
        args.provider = _provider_of(book, args.model, asked[0])
    modes = (args.service_tier, args.speed, args.inference_geo, args.traffic_type)
    rows = explain_model(book, args.provider, args.model, at, *modes)
    if not rows:
        raise CommandError(_no_price_message(book, args, at))
    columns = list(rows[0])
    sys.stdout.write(render(rows, columns, args.format))
    return 0


def _modes(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The request modes `prices show` prices, (what the price of one is, the value asked)."""
    return [
        ("a service tier", args.service_tier),
        ("a speed mode", args.speed),
        ("an inference geography", args.inference_geo),
        ("a traffic type", args.traffic_type),
    ]


def _provider_of(book, model: str, what: str) -> str:
    """The one provider the price book resolves ``model`` to, else a CommandError asking for
    --provider."""
    providers = sorted(book.providers_of(model))
    if len(providers) == 1:
        return providers[0]
    why = (
        f"model {model!r} resolves to several providers in the price book ({', '.join(providers)})"
        if providers
        else f"the price book does not know the provider of model {model!r}"
    )
    raise CommandError(f"{why}; the price of {what} depends on the provider: give --provider")


def _no_price_message(book, args: argparse.Namespace, at: datetime) -> str:
    """Why `prices show` has no price: the model, or each mode asked for that the book has no
    price for (a multiplier fixes that, not a model entry)."""
    from llm_margin.processor.pricing.genai import Usage4

    message = f"the price book has no price for model {args.model!r}" + (
        f" of provider {args.provider!r}" if args.provider else ""
    )

    def priced(**mode: str) -> bool:
        return book.price_usage(args.provider, (args.model,), Usage4(1), at, **mode).priced

    if not priced():
        return f"{message}; add it to a price overlay (see `prices check`)"
    missing = []  # (the mode, what prices it), each mode asked for on its own
    if args.service_tier and not priced(service_tier=args.service_tier):
        missing.append(
            (
                f"at service tier {args.service_tier!r}",
                _multiplier_fix("service_tiers", args.provider, args.service_tier),
            )
        )
    if args.speed and not priced(speed=args.speed):
        missing.append(
            (f"at speed {args.speed!r}", _multiplier_fix("speeds", args.provider, args.speed))
        )
    if args.inference_geo and not priced(inference_geo=args.inference_geo):
        missing.append(
            (
                f"run in inference geography {args.inference_geo!r}",
                _multiplier_fix("inference_geos", args.provider, args.inference_geo),
            )
        )
    if args.traffic_type and not priced(traffic_type=args.traffic_type):
        missing.append(
            (
                f"served as traffic type {args.traffic_type!r}",
                _multiplier_fix("traffic_types", args.provider, args.traffic_type),
            )
        )
    if not missing:  # each is priced alone, not together: name them all
        missing = [("in that combination of modes", "see `prices check`")]
    modes = " and ".join(mode for mode, _ in missing)
    return f"{message} {modes}; " + "; ".join(fix for _, fix in missing)


def run_check(args: argparse.Namespace) -> int:
    from llm_margin.clickhouse import read_sql
    from llm_margin.processor.reports.render import render

    book = _book(args.price_overlay)
    start, end = period(args)
    reader = open_reader(args)
    try:
        result = reader.query(read_sql("queries/models_seen.sql"), {"since": start, "until": end})
    finally:
        reader.close()
    rows = []
    for record in result.dicts():
        reason = _unpriced_reason(book, record)
        if not reason:
            continue
        rows.append(
            {
                "provider": record["provider"],
                "model": record["response_model"] or record["request_model"],
                "calls": int(record["calls"]),
                "input_tokens": int(record["input_tokens"]),
                "output_tokens": int(record["output_tokens"]),
                "web_search_calls": int(record["web_search_calls"]),
                "file_search_calls": int(record["file_search_calls"]),
                "stored_unpriced_calls": int(record["unpriced_calls"]),
                "reason": reason,
            }
        )
    columns = [
        "provider",
        "model",
        "calls",
        "input_tokens",
        "output_tokens",
        "web_search_calls",
        "file_search_calls",
        "stored_unpriced_calls",
        "reason",
    ]
    sys.stdout.write(render(rows, columns, args.format))
    return 1 if rows else 0


def _unpriced_reason(book, record) -> str:
    """Why the book cannot price a seen model's calls, or "" when it can: the model, a kind
    of search its calls made, a speed mode or premium tier they ran at, the model of a
    sub-inference (an advisor) they made, or the inference geography they ran in (a call with
    any of these the price lacks is stored unpriced), or the traffic type that served them
    (Vertex AI's Provisioned Throughput, paid by a subscription)."""
    from llm_margin.processor.pricing.genai import Usage4

    def priced(
        speed: str = "", service_tier: str = "", geo: str = "", traffic: str = "", **searches: int
    ) -> bool:
        return book.price_usage(
            record["provider"],
            (record["response_model"], record["request_model"]),
            Usage4(1000, 1000, **searches),
            _as_datetime(record["last_ts"]),
            service_tier=service_tier,
            speed=speed,
            inference_geo=geo,
            traffic_type=traffic,
        ).priced

    if not priced():
        return "no price for the model"
    provider = record["provider"]
    missing = []  # (what the book has no price for, what prices it)
    for name, kind in (("web search", "web_search_calls"), ("file search", "file_search_calls")):
        if int(record[kind]) and not priced(**{kind: 1}):
            field = kind.replace("_calls", "_per_k")
            missing.append((f"{name} price", f"give the model's overlay entry `{field}`"))
    missing += [
        (f"{speed}-mode price", _multiplier_fix("speeds", provider, speed))
        for speed in record["speeds"]
        if not priced(speed)
    ]
    missing += [
        (f"{tier}-tier price", _multiplier_fix("service_tiers", provider, tier))
        for tier in record["service_tiers"]
        if not priced(service_tier=tier)
    ]
    missing += [
        (f"price for its advisor model {model}", f"add {model} to a price overlay")
        for model in record.get("sub_usage_models") or ()
        if not book.price_usage(
            provider, (model,), Usage4(1000, 1000), _as_datetime(record["last_ts"])
        ).priced
    ]
    missing += [
        (f"{geo}-geo price", _multiplier_fix("inference_geos", provider, geo))
        for geo in record.get("inference_geos") or ()
        if not priced(geo=geo)
    ]
    missing += [
        (f"{traffic} traffic price", _multiplier_fix("traffic_types", provider, traffic))
        for traffic in record.get("traffic_types") or ()
        if not priced(traffic=traffic)
    ]
    if not missing:
        return ""
    return f"no {' or '.join(what for what, _ in missing)}; " + "; ".join(fix for _, fix in missing)


def _multiplier_fix(section: str, provider: str | None, mode: str) -> str:
    """How to price calls in a request mode the book has no price for: a multiplier naming
    the provider (a bare `priority` would also multiply another provider's tier of that name,
    which may mean something else, such as Anthropic's Priority Tier)."""
    name = f"{provider}/{mode}" if provider else mode
    fix = f"give `{name}` a multiplier under `{section}:` in a price overlay"
    if (section, provider, mode) == ("inference_geos", "anthropic", "us"):
        fix += ' (Anthropic bills US-only inference at 1.1x: "1.1")'
    if (section, provider, mode) == ("traffic_types", "google", "provisioned_throughput"):
        fix += (
            ' (Provisioned Throughput is paid by its subscription: "0" counts no cost per '
            "token, or a share of the list price to allocate the subscription)"
        )
    return fix


def _as_datetime(value) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value)).replace(tzinfo=timezone.utc)


_ = Decimal  # money stays Decimal in explain rows
