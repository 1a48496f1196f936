"""`llm-margin export --period YYYY-MM --format csv|stripe|table|json`: billing lines for a month
(or for any --since/--until period)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from llm_margin.processor.commands._common import (
    CommandError,
    add_store_options,
    open_reader,
    period,
)
from llm_margin.processor.reports.money import money_str
from llm_margin.processor.reports.render import render
from llm_margin.processor.reports.terminal import terminal_text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="billing export: per-customer usage lines (csv) or Stripe meter events",
        description=(
            "Per-customer usage of one calendar month (--period) or of any period "
            "(--since/--until) with markup: each line's markup_pct is its customer's in the "
            "billing file, else its plan's, else --markup-pct. The cost_usd total equals the "
            "stored cost of the period exactly; Stripe meter events are one JSON line per "
            "customer (unattributed cost is reported on stderr, not billed)."
        ),
    )
    parser.add_argument("--period", help="calendar month, e.g. 2026-11 (UTC)")
    parser.add_argument(
        "--since",
        help="instead of --period: start of the period (2026-11-01, 2026-11-01T08:00, or 7d)",
    )
    parser.add_argument("--until", help="with --since: end of the period (exclusive); default now")
    add_store_options(parser)
    parser.add_argument(
        "--format",
        choices=("csv", "stripe", "table", "json"),
        default="csv",
        help="csv (default; ends with a TOTAL row), stripe (meter events, JSON lines), table, "
        "or json (the lines, money as decimal strings)",
    )
    parser.add_argument(
        "--markup-pct",
        default="0",
        help="markup on AI cost in percent for customers whose billing file entry, and whose "
        "plan's, set no markup_pct (default 0); a customer's markup_pct wins over its plan's",
    )
    parser.add_argument(
        "--event-name",
        default="llm_usage",
        help="Stripe: meter event name (default llm_usage); the events' identifiers "
        "llm-margin-<event name>-<period>-<customer> name it too",
    )
    parser.add_argument(
        "--stripe-customers",
        metavar="FILE",
        help="Stripe: CSV with columns customer_id,stripe_customer_id (Stripe maps meter "
        "events by its own cus_ ids); customers missing from it are not billed (stderr)",
    )
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


def _export_period(args: argparse.Namespace) -> tuple[str, tuple[datetime, datetime]]:
    """(label, (since, until)) from --period YYYY-MM, or from --since/--until."""
    from llm_margin.processor.reports import export

    if args.period and (args.since or args.until):
        raise CommandError("give --period or --since/--until, not both")
    if args.period:
        try:
            return args.period, export.month_bounds(args.period)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
    if not args.since:
        raise CommandError("give the period: --period 2026-11, or --since (and --until)")
    since, until = period(args)
    return export.period_label(since, until), (since, until)


def _warn(text: str) -> None:
    # Warnings name customer ids (from the store) and Stripe ids (from the mapping file).
    print(terminal_text(f"llm-margin export: {text}"), file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from llm_margin.processor.reports import export

    markup = _decimal(args.markup_pct, "--markup-pct")
    unit = _decimal(args.unit_usd, "--unit-usd", positive=True)
    if not 0 < len(args.event_name) <= 100:  # Stripe's limit for event_name
        raise CommandError("--event-name must be 1 to 100 characters")
    if args.format == "stripe" and not args.period:
        from llm_margin.processor.reports.period import is_relative

        if not args.until or is_relative(args.since) or is_relative(args.until):
            # The period names the events' identifiers: one ending "now" (or 7d ago) is a new
            # period on every run, so a second run would bill the same calls again.
            _warn(
                "a period relative to now (7d, 24h, or no --until) is a "
                "new period, with new identifiers, on every run: sending the events of two "
                "runs bills their common calls twice; for billing use --period 2026-11, or "
                "--since and --until as dates or times"
            )
    label, bounds = _export_period(args)
    stripe_customers = None
    if args.stripe_customers:
        try:
            stripe_customers = export.read_stripe_customers(args.stripe_customers)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
    now = datetime.now(timezone.utc)
    if args.format == "stripe":
        warning = export.stripe_period_warning(bounds[1], now)
        if warning:
            _warn(warning)
    reader = open_reader(args)
    try:
        lines = export.usage_lines(reader, label, markup, bounds)
    finally:
        reader.close()
    if args.format == "csv":
        sys.stdout.write(export.to_csv(lines, label))
        return 0
    if args.format in ("table", "json"):
        rows, total = export.to_rows(lines, label)
        title = f"export {label} ({export.markup_title(lines, markup)})"
        sys.stdout.write(render(rows, export.CSV_COLUMNS, args.format, footer=total, title=title))
        return 0
    text, left_out = export.to_stripe(
        lines,
        label,
        event_name=args.event_name,
        unit_usd=unit,
        until=bounds[1],
        stripe_customers=stripe_customers,
        now=now,
    )
    sys.stdout.write(text)
    if left_out["unpriced_calls"]:
        _warn(
            f"{left_out['unpriced_calls']} calls of billed customers have no "
            "price and are billed at 0 (see `report unpriced`); export bills the as-charged "
            "cost, which `reprice` does not rewrite"
        )
    if left_out["unmapped"]:
        named = ", ".join(
            f"{customer} ({money_str(amount)} USD)"
            for customer, amount in left_out["unmapped"].items()
        )
        _warn(f"not billed, no Stripe customer id in {args.stripe_customers}: {named}")
    not_stripe = left_out["not_stripe_ids"]
    ids, are, stripe_ids = ("ids", "are", "Stripe customer ids")
    if len(not_stripe) == 1:
        ids, are, stripe_ids = ("id", "is", "a Stripe customer id")
    if not_stripe and stripe_customers is None:
        _warn(
            f"{len(not_stripe)} customer {ids} {are} not {stripe_ids} "
            f"(cus_...), e.g. {min(not_stripe)}: Stripe will not find them; map them with "
            "--stripe-customers FILE"
        )
    elif not_stripe:
        # A mapped id is checked too: a swapped column or an internal id is never invoiced.
        customer = min(not_stripe)
        _warn(
            f"{len(not_stripe)} Stripe {ids} in {args.stripe_customers} {are} not {stripe_ids} "
            f"(cus_...), e.g. {not_stripe[customer]} for {customer}: Stripe will not find them"
        )
    if left_out["unattributed_cost_usd"]:
        _warn(
            f"{left_out['unattributed_cost_usd'].normalize():f} USD of "
            "unattributed cost is not billed to anyone (see `report unpriced`)"
        )
    return 0
