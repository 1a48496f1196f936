"""`llm-margin sql "SELECT ..."`: read-only SQL against the store."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from llm_margin.processor.commands._common import (
    CommandError,
    add_store_options,
    open_reader,
    period,
    query_error_message,
)
from llm_margin.processor.reports.render import FORMATS, render

# {name:Type} placeholders, as the report queries declare them.
_PLACEHOLDER = re.compile(r"\{(\w+):")
PERIOD_PARAMETERS = ("since", "until")
# The report queries' customer filter: '' is every customer, as in `report` without --customer.
CUSTOMER_PARAMETER = "customer"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sql",
        help="run a read-only SQL query",
        description=(
            "Run SQL against llm_calls, llm_tasks, plans, customers (read-only). "
            "--since/--until fill the placeholders {since:DateTime64(6)} and "
            "{until:DateTime64(6)} when the SQL has them (UTC; default: the start of the month "
            "until now, as for `report`), and {customer:String} is '' (every customer) unless "
            "--param customer=ID is given, so clickhouse/queries/*.sql run as-is. Money prints as exact decimals, in JSON as strings; "
            "datetimes in JSON as ISO 8601; NaN as null. While `serve` runs on the data directory it "
            "answers, within its --max-result-rows / --max-result-bytes (an answer past them is "
            "refused: add LIMIT or aggregate)."
        ),
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
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")
    parser.add_argument(
        "--since",
        help="value of {since:DateTime64(6)}: 2026-11-01, 2026-11-01T08:00, or 7d / 24h ago",
    )
    parser.add_argument("--until", help="value of {until:DateTime64(6)}; default now")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.query == "-" else args.query
    parameters = query_parameters(args, text)
    reader = open_reader(args)
    try:
        result = _query(reader, text, parameters)
    finally:
        reader.close()
    output = render(_rows(result, args.format), result.columns, args.format)
    sys.stdout.write(output)
    return 0


def query_parameters(args: argparse.Namespace, text: str) -> dict[str, Any]:
    """--param values, plus the period for the placeholders {since:...} / {until:...} the SQL
    declares (a period it does not use is ignored), and '' (every customer) for {customer:...}."""
    from llm_margin.processor.reports.period import naive_utc

    parameters: dict[str, Any] = {}
    for item in args.param:
        name, _, value = item.partition("=")
        parameters[name] = value
    declared = set(_PLACEHOLDER.findall(text))
    for name in PERIOD_PARAMETERS:
        if name in parameters and getattr(args, name):
            raise CommandError(f"give {name} once: --{name} or --param {name}=..., not both")
    wanted = [n for n in PERIOD_PARAMETERS if n in declared and n not in parameters]
    if wanted:
        bounds = dict(zip(PERIOD_PARAMETERS, period(args), strict=True))
        parameters.update({name: naive_utc(bounds[name]) for name in wanted})
    if CUSTOMER_PARAMETER in declared:
        parameters.setdefault(CUSTOMER_PARAMETER, "")
    return parameters


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
