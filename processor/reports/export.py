"""Billing export: per-customer usage lines for a calendar month, with markup.

Lines are per customer and model, from clickhouse/queries/export_usage.sql. ``cost_usd`` is
the stored cost, exactly; ``amount_usd`` = cost x (1 + markup/100), exactly (no rounding), so
the lines' total equals the stored cost of the period to the last unit. A line's markup
(``markup_pct``) is its customer's ``markup_pct`` in the billing file, else the plan's the line
shows, else the export's default (``--markup-pct``); ``(unattributed)`` is nobody's, so it
always takes the default.

Stripe: one meter event per customer (``POST /v1/billing/meter_events`` body as JSON). Meter
values are whole numbers, so ``value`` is the customer's amount in ``unit_usd`` units (default
0.000001, micro dollars), half a unit rounded up, each customer on its own. The exact strings
travel in the payload as ``cost_usd``/``amount_usd``.
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import json
import re
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from llm_margin.processor.records import UNATTRIBUTED
from llm_margin.processor.reports.money import exact, money_str
from llm_margin.processor.reports.period import FIRST_YEAR, LAST_YEAR
from llm_margin.processor.reports.render import csv_cell
from llm_margin.processor.reports.views import run_sql

CSV_COLUMNS = (
    "period",
    "customer_id",
    "plan",
    "provider",
    "model",
    "calls",
    "input_tokens",
    "output_tokens",
    "unpriced_calls",
    "cost_usd",
    "markup_pct",
    "amount_usd",
)
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of ``YYYY-MM`` in UTC."""
    match = _PERIOD.match(period or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"--period must look like 2026-11, got {period!r}")
    year, month = int(match.group(1)), int(match.group(2))
    if not FIRST_YEAR <= year <= LAST_YEAR:  # ClickHouse's DateTime64 range
        raise ValueError(
            f"--period {period!r} is out of range: use a month from {FIRST_YEAR} to {LAST_YEAR}"
        )
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    days = calendar.monthrange(year, month)[1]
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
    assert (end - start).days == days
    return start, end


def period_label(since: datetime, until: datetime) -> str:
    """The period name of an export over [since, until): ``2026-11`` for one calendar month
    (however it was given), else e.g. ``20261101T000000Z-20261115T000000Z``. It names the CSV
    lines and the Stripe events' identifiers, so re-sending the same period is idempotent."""
    since, until = since.astimezone(timezone.utc), until.astimezone(timezone.utc)
    month = f"{since:%Y-%m}"
    try:
        if month_bounds(month) == (since, until):
            return month
    except ValueError:  # a year outside the store's range: named by its instants
        pass

    def stamp(value: datetime) -> str:
        return value.strftime("%Y%m%dT%H%M%SZ")

    return f"{stamp(since)}-{stamp(until)}"


@exact
def usage_lines(
    reader: Any,
    period: str,
    default_markup_pct: Decimal,
    bounds: tuple[datetime, datetime] | None = None,
) -> list[dict[str, Any]]:
    """The lines of ``period`` (``YYYY-MM``), or of ``bounds`` (since, until) named ``period``.
    ``default_markup_pct`` applies to lines whose customer and plan set no markup."""
    since, until = bounds if bounds is not None else month_bounds(period)
    lines = []
    for row in run_sql(reader, "queries/export_usage.sql", {"since": since, "until": until}):
        billing_markup = row.pop("billing_markup_pct", None)
        markup = (
            default_markup_pct
            if billing_markup is None or row["customer_id"] == UNATTRIBUTED
            else Decimal(billing_markup)
        )
        cost = Decimal(row["cost_usd"])
        lines.append(
            {
                **row,
                "period": period,
                "cost_usd": cost,
                "markup_pct": markup,
                "amount_usd": cost * (Decimal(1) + markup / Decimal(100)),
            }
        )
    return lines


def markup_title(lines: list[dict[str, Any]], default_markup_pct: Decimal) -> str:
    """How the table's title names the markup: the one markup every line has, or, when they
    differ, that they are per customer and what the default is."""
    markups = {line["markup_pct"] for line in lines} or {default_markup_pct}
    if len(markups) == 1:
        return f"markup {money_str(markups.pop())}%"
    return f"markup: per customer, default {money_str(default_markup_pct)}%"


def to_csv(lines: list[dict[str, Any]], period: str = "") -> str:
    rows, total = to_rows(lines, period)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows + [total]:
        writer.writerow([csv_cell(row.get(c, "")) for c in CSV_COLUMNS])
    return buffer.getvalue()


@exact
def to_rows(
    lines: list[dict[str, Any]], period: str = ""
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The lines with money as exact decimal strings, and their TOTAL row: for the table and
    JSON formats (JSON prints the lines only). ``period`` names the TOTAL of a period without
    lines (a month with no calls still says which month its zero is)."""
    rows = [{c: _cell(c, line[c]) for c in CSV_COLUMNS} for line in lines]
    total: dict[str, Any] = {
        "period": lines[0]["period"] if lines else period,
        "customer_id": "TOTAL",
        "calls": sum(x["calls"] for x in lines),
        "input_tokens": sum(x["input_tokens"] for x in lines),
        "output_tokens": sum(x["output_tokens"] for x in lines),
        "unpriced_calls": sum(x["unpriced_calls"] for x in lines),
        "cost_usd": money_str(sum((x["cost_usd"] for x in lines), Decimal(0))),
        "amount_usd": money_str(sum((x["amount_usd"] for x in lines), Decimal(0))),
    }
    return rows, total


def _cell(column: str, value: Any) -> Any:
    if column in ("cost_usd", "amount_usd", "markup_pct"):
        return money_str(value)
    return value


@exact
def meter_units(amount: Decimal, unit: Decimal) -> int:
    """A customer's amount in whole meter units (Stripe takes whole numbers only), half a unit
    rounded up. Each customer on its own: what one is billed never depends on the others (a
    remainder shared out across customers would bill equal usage differently, and change a
    customer's value when another's late calls arrive)."""
    return int((amount / unit).to_integral_value(rounding=ROUND_HALF_UP))


# Stripe refuses a meter event identifier longer than this
# (https://docs.stripe.com/api/billing/meter-event/create: identifier, max length 100).
STRIPE_IDENTIFIER_MAX = 100


def stripe_identifier(event_name: str, period: str, customer: str) -> str:
    """``llm-margin-<event name>-<period>-<customer>``, the same on every run. The event name
    is part of it because Stripe refuses an identifier it has seen within 24 hours whatever
    the meter: without it the same customer and period sent to a second meter would be
    refused as a re-send of the first. Too long for Stripe's 100 characters (event names may
    be 100, customer ids 128): the event name and customer are replaced by a digest, stable
    too."""
    identifier = f"llm-margin-{event_name}-{period}-{customer}"
    if len(identifier.encode()) <= STRIPE_IDENTIFIER_MAX:
        return identifier
    digest = hashlib.sha256(f"{event_name}\n{customer}".encode()).hexdigest()[:32]
    return f"llm-margin-{period}-{digest}"


# Stripe takes a meter event stamped within the past 35 calendar days, or up to 5 minutes
# ahead (https://docs.stripe.com/billing/subscriptions/usage-based/recording-usage-api).
STRIPE_MAX_AGE = timedelta(days=35)


def stripe_period_warning(until: datetime, now: datetime) -> str | None:
    """What to know before sending the meter events of a period ending at ``until``.

    A period that has not ended is exported as the usage so far, stamped ``now`` (Stripe takes
    no event stamped ahead): its events carry the whole period's identifiers, so sending the
    period again once complete is dropped by Stripe within its 24-hour identifier window (the
    rest of the period never billed) or counted twice after it. A period whose last second is
    older than Stripe accepts cannot be sent at all."""
    if until > now:
        return (
            f"the period has not ended (it runs until {until:%Y-%m-%dT%H:%M:%SZ}): these events "
            "bill the usage so far, stamped now, under the whole period's identifiers; sending "
            "the period again once it has ended would be dropped or billed twice, so send "
            "either this or the complete period"
        )
    stamp = until - timedelta(seconds=1)
    if now - stamp > STRIPE_MAX_AGE:
        return (
            f"these events are stamped {stamp:%Y-%m-%dT%H:%M:%SZ}, more than 35 days ago: "
            "Stripe refuses meter events that old"
        )
    return None


def read_stripe_customers(path: str) -> dict[str, str]:
    """``customer_id`` -> ``stripe_customer_id`` from a CSV with those two columns (header
    names in any case; other columns ignored). Stripe maps a meter event to a customer by its
    Stripe id only (the meter's customer_mapping is ``by_id``), so our ids need this map
    unless they are Stripe ids already."""
    mapping: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [name.strip().lower() for name in next(reader, [])]
            if not {"customer_id", "stripe_customer_id"} <= set(header):
                raise ValueError(f"{path}: needs the columns customer_id,stripe_customer_id")
            for fields in reader:
                row = dict(zip(header, (f.strip() for f in fields), strict=False))
                customer, stripe_id = row.get("customer_id", ""), row.get("stripe_customer_id", "")
                if not customer and not stripe_id:
                    continue
                if not customer or not stripe_id:
                    raise ValueError(f"{path} line {reader.line_num}: both ids are needed")
                if mapping.setdefault(customer, stripe_id) != stripe_id:
                    raise ValueError(
                        f"{path} line {reader.line_num}: {customer!r} has two Stripe ids"
                    )
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    return mapping


@exact
def to_stripe(
    lines: list[dict[str, Any]],
    period: str,
    *,
    event_name: str = "llm_usage",
    unit_usd: Decimal = Decimal("0.000001"),
    until: datetime | None = None,
    stripe_customers: dict[str, str] | None = None,
    now: datetime | None = None,
) -> tuple[str, dict[str, Any]]:
    """JSON lines, one meter event per customer; returns (text, what was left out).
    ``until``: the end of a period that is not a calendar month (events are stamped with the
    period's last second, or with ``now``'s if the period has not ended yet: Stripe refuses
    events stamped ahead). ``stripe_customers``: our customer id -> Stripe customer id; a
    customer missing from it is left out (``unmapped``: amount by customer). Without it our
    ids are sent as Stripe ids. Ids sent that are not Stripe's (``cus_...``) are listed in
    ``not_stripe_ids``."""
    per_customer: dict[str, dict[str, Decimal]] = {}
    left_out: dict[str, Any] = {
        "unattributed_cost_usd": Decimal(0),
        "unmapped": {},
        "unpriced_calls": 0,  # billed customers' calls stored without a price: billed at 0
        "not_stripe_ids": {},  # customer -> the id sent that is no Stripe customer id (cus_)
    }
    for line in lines:
        if line["customer_id"] == UNATTRIBUTED:
            left_out["unattributed_cost_usd"] += line["cost_usd"]
            continue
        left_out["unpriced_calls"] += line.get("unpriced_calls", 0)
        entry = per_customer.setdefault(
            line["customer_id"], {"cost": Decimal(0), "amount": Decimal(0)}
        )
        entry["cost"] += line["cost_usd"]
        entry["amount"] += line["amount_usd"]
    if until is None:
        _, until = month_bounds(period)
    stamp = until if now is None else min(until, now)
    timestamp = int(stamp.timestamp()) - 1  # the period's last second (so far)
    out = []
    for customer in sorted(per_customer):
        amounts = per_customer[customer]
        stripe_id = customer if stripe_customers is None else stripe_customers.get(customer)
        if stripe_id is None:
            left_out["unmapped"][customer] = amounts["amount"]
            continue
        if not stripe_id.startswith("cus_"):  # a meter's by_id mapping finds no customer
            left_out["not_stripe_ids"][customer] = stripe_id
        out.append(
            json.dumps(
                {
                    "event_name": event_name,
                    "identifier": stripe_identifier(event_name, period, customer),
                    "timestamp": timestamp,
                    "payload": {
                        "stripe_customer_id": stripe_id,
                        "customer_id": customer,
                        "value": str(meter_units(amounts["amount"], unit_usd)),
                        "unit_usd": money_str(unit_usd),
                        "cost_usd": money_str(amounts["cost"]),
                        "amount_usd": money_str(amounts["amount"]),
                        "period": period,
                    },
                },
                sort_keys=True,
            )
        )
    return "".join(line + "\n" for line in out), left_out
