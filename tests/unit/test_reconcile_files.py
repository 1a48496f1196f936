"""Reading provider cost exports as they come out of dashboards and spreadsheets."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from llm_margin.processor.reports.reconcile import ProviderUsageError, read_provider_usage

OPENAI = (
    "start_time_iso,end_time_iso,organization_id,project_id,project_name,line_item,"
    "amount_value,amount_currency"
)
ANTHROPIC = (
    "usage_date_utc,workspace_id,workspace_name,api_key_id,model,service_tier,context_window,"
    "token_type,cost_usd"
)
DAY = "2026-11-20T00:00:00+00:00,2026-11-21T00:00:00+00:00,org,proj,Prod"


def write(tmp_path, data: bytes):
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    return str(path)


def test_bom_crlf_quoted_numbers_blank_and_empty_rows(tmp_path):
    text = (
        f"{OPENAI.upper()}\r\n"  # header names in another case
        f'{DAY},"gpt-4o-mini-2024-07-18, input","0.0123",usd\r\n'
        "\r\n"
        f'{DAY},"gpt-4o-mini-2024-07-18, output", 0.0290 ,USD\r\n'
        ",,,,,,,\r\n"  # what a spreadsheet leaves at the end
    )
    provider, totals = read_provider_usage(write(tmp_path, b"\xef\xbb\xbf" + text.encode()))
    assert provider == "openai"
    assert totals == {(date(2026, 11, 20), "gpt-4o-mini"): Decimal("0.0413")}


def test_the_day_is_the_utc_day(tmp_path):
    text = f'{OPENAI}\n2026-11-20T20:00:00-08:00,x,o,p,P,"gpt-4o, input",1,usd\n'
    assert read_provider_usage(write(tmp_path, text.encode()))[1] == {
        (date(2026, 11, 21), "gpt-4o"): Decimal(1)
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # Excel's "Unicode text" and other non-UTF-8 files: one clear line, no traceback.
        (f"{ANTHROPIC}\n".encode("utf-16"), "not UTF-8 text"),
        (b"\xa1\xfe\x00garbage", "not UTF-8 text"),
        # The physical line, counting blank lines and quoted line breaks.
        (f'{OPENAI}\n\n{DAY},"gpt-4o, input",bad,usd\n'.encode(), "line 3: 'bad' is not"),
        (f'{OPENAI}\n{DAY},"a\nb",1,usd\n{DAY},"gpt-4o",zz,usd\n'.encode(), "line 4: 'zz'"),
        (f"{OPENAI}\n{DAY}\n".encode(), "line 2: no value for column 'amount_value'"),
        (b"a,b\n1,2\n", "unknown layout"),
    ],
)
def test_unreadable_files_are_one_clear_error(tmp_path, data, message):
    with pytest.raises(ProviderUsageError, match=message):
        read_provider_usage(write(tmp_path, data))


@pytest.mark.parametrize("tolerance", ["nan", "inf", "-0.5"])
def test_tolerance_must_be_a_non_negative_number(tmp_path, capsys, tolerance):
    # inf called a 5 USD vs 1 USD day a match; nan was a traceback on the first stored day.
    from llm_margin.processor import cli

    argv = ["reconcile", "--provider-usage", "x.csv", "--data-dir", str(tmp_path)]
    assert cli.main([*argv, f"--tolerance-usd={tolerance}"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"llm-margin reconcile: --tolerance-usd must be a non-negative number, got {tolerance!r}"
    ]
