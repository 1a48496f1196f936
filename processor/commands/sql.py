"""`llm-margin sql "SELECT ..."`: read-only SQL against the store."""

from __future__ import annotations

import argparse
import sys

from llm_margin.processor.commands._common import add_store_options, open_reader
from llm_margin.processor.reports.render import FORMATS, render


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sql",
        help="run a read-only SQL query",
        description="Run SQL against llm_calls, llm_tasks, plans, customers (read-only).",
    )
    parser.add_argument("query", help="SQL text, or - to read it from standard input")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="query parameter for {NAME:Type} placeholders (repeatable)",
    )
    add_store_options(parser)
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from llm_margin.processor.reports.money import money_str
    from llm_margin.processor.storage import Store

    text = sys.stdin.read() if args.query == "-" else args.query
    params = {}
    for item in args.param:
        name, _, value = item.partition("=")
        params[name] = value
    reader = open_reader(args)
    try:
        if isinstance(reader, Store):
            result = reader.query_readonly(text, params)
        else:
            result = reader.query(text, params)
    finally:
        reader.close()
    rows = [
        {
            c: (money_str(v) if type(v).__name__ == "Decimal" else v)
            for c, v in zip(result.columns, r, strict=True)
        }
        for r in result.rows
    ]
    sys.stdout.write(render(rows, result.columns, args.format))
    return 0
