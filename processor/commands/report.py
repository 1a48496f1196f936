"""`llm-margin report <view>`: the margin reports."""

from __future__ import annotations

import argparse
import sys

from llm_margin.processor.commands._common import add_read_options, open_reader, period

VIEWS = ("customers",)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="margin reports: " + ", ".join(VIEWS),
        description="Per-customer cost, revenue and gross margin. Money is exact.",
    )
    parser.add_argument("view", choices=VIEWS, help="which report")
    add_read_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from llm_margin.processor.reports import customers
    from llm_margin.processor.reports.render import render

    since, until = period(args)
    reader = open_reader(args)
    try:
        rows = customers.customer_rows(reader, since, until)
    finally:
        reader.close()
    total = customers.total_row(rows)
    title = f"Customer margin {since:%Y-%m-%d %H:%M} .. {until:%Y-%m-%d %H:%M} UTC"
    sys.stdout.write(
        render(
            [customers.to_wire(r) for r in rows],
            customers.COLUMNS,
            args.format,
            footer=customers.to_wire(total),
            title=title if args.format == "table" else None,
        )
    )
    return 0
