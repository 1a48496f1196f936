"""`llm-margin sql "SELECT ..."`: read-only SQL against the store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llm_margin.processor.commands._common import (
    CommandError,
    add_store_options,
    open_reader,
    query_error_message,
)
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
    text = sys.stdin.read() if args.query == "-" else args.query
    params = {}
    for item in args.param:
        name, _, value = item.partition("=")
        params[name] = value
    reader = open_reader(args)
    try:
        result = _query(reader, text, params)
    finally:
        reader.close()
    output = render(_rows(result, args.format), result.columns, args.format)
    sys.stdout.write(output if output.endswith("\n") else output + "\n")  # JSON has none
    return 0


def _query(reader: Any, text: str, parameters: dict[str, Any]) -> Any:
    """The result, or the query's error in ClickHouse's words (no traceback), either way the
    command reads."""
    from clickhouse_connect.driver.exceptions import ClickHouseError
    from llm_margin.processor.remote import RemoteError
    from llm_margin.processor.storage import Store

    try:
        if isinstance(reader, Store):
            return reader.query_readonly(text, parameters)
        return reader.query(text, parameters)
    except (ClickHouseError, RemoteError) as exc:
        raise CommandError(query_error_message(exc)) from exc


def _rows(result: Any, fmt: str) -> list[dict[str, Any]]:
    """Rows for the renderer: JSON encodes the values itself; table and CSV get their text."""
    from llm_margin.processor.reports.values import cell_text

    convert = (lambda v: v) if fmt == "json" else cell_text
    return [
        {c: convert(v) for c, v in zip(result.columns, row, strict=True)} for row in result.rows
    ]
