"""`llm-margin report <view>`: the margin reports."""

from __future__ import annotations

import argparse
import math
import sys
from datetime import timedelta

from llm_margin.processor.commands._common import (
    CommandError,
    add_read_options,
    open_reader,
    period,
)
from llm_margin.processor.reports.period import month_start_before

VIEWS = ("customers", "plans", "features", "routes", "runaway", "budgets", "unpriced", "weekly")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="margin reports: " + ", ".join(VIEWS),
        description=(
            "Per-customer cost, revenue and gross margin, and the views around it. Money is "
            "exact. `weekly` is the founders' page (default: the last 7 days); add --html FILE "
            "for a self-contained page with charts. --customer ID narrows any view but "
            "`plans` to one customer."
        ),
    )
    parser.add_argument("view", choices=VIEWS, help="which report")
    add_read_options(parser)
    parser.add_argument(
        "--customer",
        metavar="ID",
        help="only this customer's rows (every view but plans; '(unattributed)' is the calls "
        "with no customer); spaces around the id are ignored; an id with no data gives an "
        "empty report",
    )
    parser.add_argument("--html", metavar="FILE", help="weekly only: also write an HTML page")
    parser.add_argument("--limit", type=int, help="runaway: how many workspaces (default 20)")
    parser.add_argument(
        "--loop-attempts",
        type=int,
        help="runaway: calls in one task that count as a loop (default 5)",
    )
    parser.add_argument(
        "--min-pct",
        type=float,
        default=0.0,
        help="budgets: only rows using at least this %% of the allowance (to date or projected)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.html and args.view != "weekly":
        raise CommandError("--html goes with `report weekly`")
    _check_view_options(args)
    # weekly: the 7 days before --until (default now), unless --since says otherwise
    since, until = period(args, timedelta(days=7) if args.view == "weekly" else None)
    reader = open_reader(args)
    try:
        _refresh_rollup(reader, since, until)
        if args.view == "customers":
            text = _customers(reader, since, until, args.format, args.customer)
        elif args.view == "weekly":
            text = _weekly(reader, since, until, args.format, args.html, args.customer)
        else:
            text = _view(reader, args, since, until)
    except Exception as exc:
        from llm_margin.processor.remote import RemoteError

        if isinstance(exc, RemoteError):
            raise CommandError(str(exc)) from exc
        raise
    finally:
        reader.close()
    sys.stdout.write(text)
    return 0


def _check_view_options(args: argparse.Namespace) -> None:
    """--limit, --loop-attempts and --min-pct belong to one view each: elsewhere they were
    ignored, and a bad value failed as ClickHouse's parameter error or a traceback."""
    for flag, value, view in (
        ("--limit", args.limit, "runaway"),
        ("--loop-attempts", args.loop_attempts, "runaway"),
        ("--min-pct", args.min_pct or None, "budgets"),
    ):
        if value is not None and args.view != view:
            raise CommandError(f"{flag} goes with `report {view}`")
    if args.customer is not None:
        # Stored ids never start or end with whitespace (the processor trims the customer id
        # it receives): 'acme ' found nothing, under a title that showed "acme".
        args.customer = args.customer.strip()
        if args.view == "plans":
            raise CommandError(
                "--customer does not go with `report plans`: a plan's margin is many customers'"
                " (see `report customers --customer ID` for one customer's)"
            )
        if not args.customer:  # the queries read '' as every customer
            raise CommandError("--customer needs a customer id")
    for flag, value in (("--limit", args.limit), ("--loop-attempts", args.loop_attempts)):
        if value is not None and value < 1:
            raise CommandError(f"{flag} must be a positive integer, got {value}")
    if not math.isfinite(args.min_pct):
        raise CommandError(f"--min-pct must be a number, got {args.min_pct}")


# At most this many stale hours are refreshed before a report (the newest of its window): a
# refresh costs about as much as one weekly report reading those hours from llm_calls, so a
# long backlog (after `reprice`, an upgrade, or a stopped processor) is left to the running
# processor and the report reads those hours from llm_calls instead (same answer).
REPORT_REFRESH_MAX_HOURS = 48


def _refresh_rollup(reader, since, until) -> None:
    """When this command owns the store, bring the hourly roll-up of the report's window up to
    date first (a running processor does that itself); read-only servers are left alone. The
    window covers every period a view reads: the previous period (runaway growth) and the
    month to date (budgets)."""
    from llm_margin.processor.reports.rollup import refresh_usage_rollup
    from llm_margin.processor.storage import Store

    if isinstance(reader, Store) and reader.description.startswith("embedded"):
        window_start = min(since - (until - since), month_start_before(until))
        try:
            refresh_usage_rollup(
                reader, max_hours=REPORT_REFRESH_MAX_HOURS, since=window_start, until=until
            )
        except Exception:  # speed only: the queries are right without a current roll-up
            pass


def _title(name: str, since, until, customer: str | None = None) -> str:
    if customer is not None:
        name = f"{name} for customer {customer}"
    return f"{name} {since:%Y-%m-%d %H:%M} .. {until:%Y-%m-%d %H:%M} UTC"


def _customers(reader, since, until, fmt: str, customer: str | None = None) -> str:
    from llm_margin.processor.reports import customers
    from llm_margin.processor.reports.render import render

    rows = customers.customer_rows(reader, since, until, customer or "")
    total = customers.total_row(rows, customer)
    return render(
        [customers.to_wire(r) for r in rows],
        customers.COLUMNS,
        fmt,
        footer=customers.to_wire(total),
        title=_title("Customer margin", since, until, customer) if fmt == "table" else None,
    )


def _view(reader, args: argparse.Namespace, since, until) -> str:
    from decimal import Decimal

    from llm_margin.processor.reports.render import render
    from llm_margin.processor.reports.views import VIEWS as SPECS
    from llm_margin.processor.reports.views import to_wire, total_row, view_rows

    spec = SPECS[args.view]
    rows = view_rows(
        reader,
        spec,
        since,
        until,
        limit=args.limit,
        loop_attempts=args.loop_attempts,
        customer=args.customer,
    )
    if args.view == "budgets" and args.min_pct:
        floor = Decimal(str(args.min_pct))
        rows = [
            r for r in rows if max(r.get("used_pct") or 0, r.get("projected_pct") or 0) >= floor
        ]
    total = total_row(spec, rows)
    return render(
        [to_wire(r) for r in rows],
        spec.columns,
        args.format,
        footer=to_wire(total) if total else None,
        title=_title(spec.title, _title_since(args.view, since, until), until, args.customer)
        if args.format == "table"
        else None,
    )


def _title_since(view: str, since, until):
    """Where the numbers start: budgets are month to date at --until, whatever --since says."""
    if view == "budgets":
        return month_start_before(until)
    return since


def _weekly(
    reader, since, until, fmt: str, html_path: str | None, customer: str | None = None
) -> str:
    from llm_margin.processor.reports.weekly import weekly_text

    try:
        return weekly_text(reader, since, until, fmt, html_path, customer)
    except OSError as exc:
        raise CommandError(f"cannot write {html_path}: {exc}") from exc
