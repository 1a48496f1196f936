"""`llm-margin reprice --since/--until`: restate stored calls under the current price book.

The as-charged cost in ``llm_calls`` is never rewritten; each restated call gets a row in
``llm_call_restatements`` (restated cost, priced, price version) beside it, and
``clickhouse/queries/calls_restated.sql`` shows both. Needs write access: a ClickHouse server
(``--clickhouse-url``) any time, or the embedded store while ``serve`` is not running on it.
"""

from __future__ import annotations

import argparse
import sys

from llm_margin.processor.commands._common import (
    CommandError,
    add_store_options,
    checked_clickhouse_url,
    open_reader,
    period,
    require_data_dir,
)
from llm_margin.processor.reports.render import FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reprice",
        help="restate stored calls under the current price book (as-charged kept)",
        description=(
            "Price stored calls of a period again with the current price book (genai-prices "
            "plus --price-overlay) and store the restated cost beside the as-charged one."
        ),
    )
    add_store_options(parser)
    parser.add_argument("--format", choices=FORMATS, default="table", help="summary format")
    parser.add_argument(
        "--since", help="start of the period: 2026-11-01, 2026-11-01T08:00, or 7d / 24h ago"
    )
    parser.add_argument("--until", help="end of the period (exclusive); default now")
    parser.add_argument("--price-overlay", help="price overlay YAML (the book to restate with)")
    parser.add_argument("--dry-run", action="store_true", help="print the summary, store nothing")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from llm_margin.processor.pricing import OverlayError, PriceBook
    from llm_margin.processor.remote import running_server
    from llm_margin.processor.reports.render import render
    from llm_margin.processor.repricing import reprice
    from llm_margin.processor.storage import Store, StoreLockedError

    try:
        book = PriceBook.from_file(args.price_overlay)
    except OverlayError as exc:
        raise CommandError(str(exc)) from exc
    since, until = period(args)
    if args.dry_run:  # reads only: a read-only server user or the running processor will do
        store = open_reader(args)
    elif args.clickhouse_url:
        store = Store.open(clickhouse_url=checked_clickhouse_url(args), database=args.database)
    else:
        require_data_dir(args.data_dir)
        if running_server(args.data_dir):
            raise CommandError(
                f"`llm-margin serve` is running on {args.data_dir}; reprice writes, so stop it "
                "first (or use a ClickHouse server with --clickhouse-url; --dry-run works "
                "while it runs)"
            )
        try:
            store = Store.open(data_dir=args.data_dir, database=args.database)
        except StoreLockedError as exc:
            raise CommandError(str(exc)) from exc
    try:
        summary = reprice(store, book, since, until, dry_run=args.dry_run)
    finally:
        store.close()
    row = summary.row()
    sys.stdout.write(render([row], list(row), args.format))
    return 0
