"""`llm-margin export --period YYYY-MM --format csv|stripe`: billing lines for a month."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation

from llm_margin.processor.commands._common import CommandError, add_store_options, open_reader


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="billing export: per-customer usage lines (csv) or Stripe meter events",
        description=(
            "Per-customer usage of one calendar month with markup. The CSV's cost_usd total "
            "equals the stored cost of the month exactly; Stripe meter events are one JSON "
            "line per customer (unattributed cost is reported on stderr, not billed)."
        ),
    )
    parser.add_argument("--period", required=True, help="calendar month, e.g. 2026-11 (UTC)")
    add_store_options(parser)
    parser.add_argument("--format", choices=("csv", "stripe"), default="csv")
    parser.add_argument(
        "--markup-pct", default="0", help="markup on AI cost in percent (default 0)"
    )
    parser.add_argument("--event-name", default="llm_usage", help="Stripe meter event name")
    parser.add_argument(
        "--unit-usd",
        default="0.000001",
        help="Stripe: USD per meter unit (default 0.000001, micro-dollars)",
    )
    parser.set_defaults(handler=run)


def _decimal(text: str, flag: str, positive: bool = False) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise CommandError(f"{flag} must be a number, got {text!r}") from exc
    if not value.is_finite() or value < 0 or (positive and value == 0):
        raise CommandError(f"{flag} must be a {'positive' if positive else 'non-negative'} number")
    return value


def run(args: argparse.Namespace) -> int:
    from llm_margin.processor.reports import export

    markup = _decimal(args.markup_pct, "--markup-pct")
    unit = _decimal(args.unit_usd, "--unit-usd", positive=True)
    try:
        export.month_bounds(args.period)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    reader = open_reader(args)
    try:
        lines = export.usage_lines(reader, args.period, markup)
    finally:
        reader.close()
    if args.format == "csv":
        sys.stdout.write(export.to_csv(lines))
        return 0
    text, left_out = export.to_stripe(lines, args.period, event_name=args.event_name, unit_usd=unit)
    sys.stdout.write(text)
    if left_out["unattributed_cost_usd"]:
        print(
            f"llm-margin export: {left_out['unattributed_cost_usd'].normalize():f} USD of "
            "unattributed cost is not billed to anyone (see `report unpriced`)",
            file=sys.stderr,
        )
    return 0
