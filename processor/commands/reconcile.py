"""`llm-margin reconcile --provider-usage FILE`: stored cost vs the provider's cost export."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation

from llm_margin.processor.commands._common import (
    CommandError,
    add_store_options,
    open_reader,
    period,
)
from llm_margin.processor.reports.render import FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reconcile",
        help="compare stored cost with an OpenAI or Anthropic cost export (CSV, or cost API JSON)",
        description=(
            "Compares stored cost with the provider's own cost export by UTC day and model, "
            "and explains each difference (match, unpriced, with what would price the calls, "
            "unattributed, failed-but-billed, price mismatch, not in the provider export, not "
            "a model's tokens). Web and file searches, which the exports bill on tool lines without a "
            "model, are compared by day with those lines, as (web searches) and (file "
            "searches); a model's row holds the rest of its calls' cost. An Anthropic "
            "advisor's cost is compared under the advisor's model, as the export bills it. "
            "Layouts: see docs/reports-budgets-billing.md."
        ),
    )
    parser.add_argument(
        "--provider-usage",
        required=True,
        metavar="FILE",
        help="the cost export (CSV), or pages of the provider's cost API saved as JSON",
    )
    add_store_options(parser)
    parser.add_argument("--format", choices=FORMATS, default="table", help="default table")
    parser.add_argument(
        "--since",
        help="compare only the UTC days overlapping this period: its start (2026-11-01, or 7d)",
    )
    parser.add_argument("--until", help="end of that period (exclusive); default now")
    parser.add_argument(
        "--tolerance-usd",
        default="0.01",
        help="differences up to this are a match (exports round; default 0.01)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from llm_margin.processor.reports import reconcile
    from llm_margin.processor.reports.render import render
    from llm_margin.processor.reports.views import to_wire

    try:
        tolerance = Decimal(args.tolerance_usd)
    except InvalidOperation as exc:
        raise CommandError(f"--tolerance-usd must be a number, got {args.tolerance_usd!r}") from exc
    # nan gave a traceback on a difference to compare; inf called every difference a match,
    # a negative one none (not even equal amounts)
    if not tolerance.is_finite() or tolerance < 0:
        raise CommandError(
            f"--tolerance-usd must be a non-negative number, got {args.tolerance_usd!r}"
        )
    try:
        reconcile.read_provider_usage(args.provider_usage)  # fail on a bad file before opening
    except reconcile.ProviderUsageError as exc:
        raise CommandError(str(exc)) from exc
    since, until = period(args) if (args.since or args.until) else (None, None)
    reader = open_reader(args)
    try:
        provider, rows = reconcile.reconcile(
            reader, args.provider_usage, tolerance, since=since, until=until
        )
    except reconcile.ProviderUsageError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        reader.close()
    title = f"Reconciliation with the {provider} cost export {args.provider_usage}"
    sys.stdout.write(
        render(
            [to_wire(r) for r in rows],
            reconcile.COLUMNS,
            args.format,
            footer=to_wire(reconcile.total_row(rows)),
            title=title if args.format == "table" else None,
        )
    )
    return 0
