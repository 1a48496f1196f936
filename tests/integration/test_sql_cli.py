"""`llm-margin sql` (and the other read commands' shared paths) with the store opened directly
and through a running `serve` subprocess (/api/query): same bytes either way, valid JSON for
every ClickHouse type, clean errors.

One `serve` for the module: its store and the direct path's store are made alike here, so
both answer `SELECT * FROM llm_tasks` with the same row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from llm_margin.processor.cli import main
from llm_margin.processor.remote import STATE_FILE_NAME

from tests.conftest import bin_path, free_port, running_serve

pytestmark = pytest.mark.integration

# Every kind of value the audit found printing differently, or not at all.
ALL_TYPES = (
    "SELECT toDateTime64('2026-11-30 18:48:53.243949', 6) AS ts, toDate('2026-11-30') AS day, "
    "toDecimal128(0, 18) AS zero, toDecimal128('0.00000006', 18) AS tiny, "
    "toDecimal128('0.00001725', 18) AS money, "
    "toUUID('00000000-0000-0000-0000-000000000001') AS id, toIPv4('10.0.0.1') AS ip, "
    "(1, 'x') AS pair, [1, 2] AS list, nan AS not_a_number, "
    "map('a', toDecimal64(1.5, 3)) AS prices, [(toDate('2026-01-02'), inf)] AS nested"
)
TASK = (
    "INSERT INTO llm_tasks (task_id, customer_id, cost_usd, started_at, ended_at, version) "
    "VALUES ('t1', 'acme', 0.00001725, '2026-11-30 18:48:53.243949', "
    "'2026-11-30 18:48:54', 1)"
)


def make_store(data_dir: str) -> str:
    """A fresh store holding the one task (chDB directories cannot be copied: they link)."""
    from llm_margin.processor.storage import Store

    store = Store.open(data_dir=data_dir)
    try:
        store.command(TASK)
    finally:
        store.close()
    return data_dir


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, str]:
    """Two identical stores: `direct` (opened in-process) and `served` (by `serve`)."""
    root = tmp_path_factory.mktemp("sql-cli")
    return {name: make_store(str(root / name)) for name in ("direct", "served")}


@pytest.fixture(scope="module")
def serve(stores) -> Iterator[dict]:
    """`llm-margin serve` on the `served` store, with its ClickHouse HTTP interface."""
    http_port, clickhouse_port = free_port(), free_port()
    with running_serve(
        stores["served"],
        "--host", "127.0.0.1",
        "--otlp-grpc-port", str(free_port()),
        "--otlp-http-port", str(http_port),
        "--clickhouse-http-port", str(clickhouse_port),
    ):  # fmt: skip
        yield {
            "http_url": f"http://127.0.0.1:{http_port}",
            "clickhouse_url": f"http://127.0.0.1:{clickhouse_port}",
        }


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def both(capsys, stores, serve, *argv: str) -> tuple[tuple, tuple]:
    """The same command on the direct store and through the running processor."""
    assert os.path.exists(os.path.join(stores["served"], STATE_FILE_NAME))
    direct = cli(capsys, *argv, "--data-dir", stores["direct"])
    remote = cli(capsys, *argv, "--data-dir", stores["served"])
    return direct, remote


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
@pytest.mark.parametrize(
    "query", [ALL_TYPES, "SELECT * FROM llm_tasks FINAL"], ids=["all-types", "llm_tasks"]
)
def test_sql_prints_the_same_bytes_direct_and_remote(capsys, stores, serve, fmt, query):
    direct, remote = both(capsys, stores, serve, "sql", "--format", fmt, query)
    assert direct[0] == 0, direct[2]
    assert remote == direct


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("table", "task_id  cost_usd\n-------  --------\n"),
        ("csv", "task_id,cost_usd\n"),
        ("json", "[]\n"),
    ],
)
def test_sql_with_no_rows_still_prints_the_header(capsys, stores, serve, fmt, expected):
    # chDB sends no block for an empty result, so no column names came back with it
    query = "SELECT task_id, cost_usd FROM llm_tasks WHERE calls > 1000000 -- none;"
    direct, remote = both(capsys, stores, serve, "sql", "--format", fmt, query)
    assert direct == (0, expected, ""), direct
    assert remote == direct


def test_sql_json_is_valid_and_exact(capsys, stores, serve):
    (code, out, err), remote = both(capsys, stores, serve, "sql", "--format", "json", ALL_TYPES)
    assert code == 0, err
    assert remote[1] == out
    assert json.loads(out, parse_constant=pytest.fail) == [
        {
            "ts": "2026-11-30T18:48:53.243949",
            "day": "2026-11-30",
            "zero": "0",
            "tiny": "0.00000006",
            "money": "0.00001725",
            "id": "00000000-0000-0000-0000-000000000001",
            "ip": "10.0.0.1",
            "pair": [1, "x"],
            "list": [1, 2],
            "not_a_number": None,
            "prices": {"a": "1.5"},
            "nested": [["2026-01-02", None]],
        }
    ]


def test_sql_table_text(capsys, stores, serve):
    (code, out, err), remote = both(capsys, stores, serve, "sql", "--format", "csv", ALL_TYPES)
    assert code == 0, err
    assert remote[1] == out
    assert out.splitlines()[1] == (
        "2026-11-30 18:48:53.243949,2026-11-30,0,0.00000006,0.00001725,"
        '00000000-0000-0000-0000-000000000001,10.0.0.1,"(1, \'x\')","[1, 2]",nan,'
        "{'a': 1.5},\"[('2026-01-02', inf)]\""
    )


def test_sql_json_over_clickhouse_url(capsys, stores, serve):
    code, out, err = cli(
        capsys, "sql", "--clickhouse-url", serve["clickhouse_url"], "--format", "json", ALL_TYPES
    )
    assert code == 0, err
    direct = cli(capsys, "sql", "--data-dir", stores["direct"], "--format", "json", ALL_TYPES)
    assert out == direct[1]


def test_api_query_answers_every_type_as_plain_json(serve):
    """Callers other than the CLI (curl, the benchmark) get plain JSON: no dropped connection
    on UUID, valid JSON for NaN, money as exact decimal strings."""
    body = json.dumps({"sql": ALL_TYPES}).encode()
    url = serve["http_url"] + "/api/query"
    # A web page may POST text/plain or a form cross-origin without asking first: refused.
    for form_like in ("text/plain", "application/x-www-form-urlencoded", None):
        request = urllib.request.Request(url, data=body, method="POST")
        if form_like:
            request.add_header("Content-Type", form_like)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 415, form_like
    json_type = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, method="POST", headers=json_type)
    with urllib.request.urlopen(request, timeout=30) as response:
        document = json.loads(response.read(), parse_constant=pytest.fail)
    row = dict(zip(document["columns"], document["rows"][0], strict=True))
    assert row["id"] == "00000000-0000-0000-0000-000000000001"
    assert row["zero"] == "0" and row["tiny"] == "0.00000006" and row["not_a_number"] is None


def test_sql_error_is_one_clean_line_either_way(capsys, stores, serve):
    direct, remote = both(capsys, stores, serve, "sql", "SELECT nonexistent FROM llm_calls")
    assert direct[0] == 2 and direct[1] == ""
    assert direct[2].startswith("llm-margin sql: Code: 47. DB::Exception: Unknown expression")
    assert "UNKNOWN_IDENTIFIER" in direct[2] and len(direct[2].splitlines()) == 1
    assert remote == direct


def test_sql_syntax_error_is_one_line(capsys, stores):
    code, out, err = cli(capsys, "sql", "--data-dir", stores["direct"], "SELEC 1")
    assert code == 2 and "Syntax error" in err and len(err.splitlines()) == 1


def test_sql_since_until_fill_the_period_placeholders(capsys, stores, serve):
    query = "SELECT {since:DateTime64(6)} AS since, {until:DateTime64(6)} AS until"
    period = ("--since", "2026-11-01", "--until", "2026-11-02T08:30")
    direct, remote = both(capsys, stores, serve, "sql", "--format", "csv", *period, query)
    assert direct == (0, "since,until\n2026-11-01 00:00:00,2026-11-02 08:30:00\n", "")
    assert remote == direct
    # A query without the placeholders ignores the period.
    code, out, _ = cli(capsys, "sql", "--data-dir", stores["direct"], *period, "SELECT 1 AS one")
    assert (code, out) == (0, "one\n---\n  1\n")


def test_sql_runs_a_report_query_file_as_is(capsys, stores):
    """The report queries' {customer:String} is '' (every customer) unless given."""
    with open(os.path.join("clickhouse", "queries", "feature_cost.sql")) as file:
        query = file.read()
    period = ("--since", "2026-11-30", "--until", "2026-12-01", "--format", "csv")
    args = ("sql", "--data-dir", stores["direct"], *period)
    code, out, err = cli(capsys, *args, query)
    assert code == 0, err
    assert [line.split(",")[-1] for line in out.splitlines()[1:]] == ["1"]  # acme's task
    code, out, err = cli(capsys, *args, "--param", "customer=globex", query)
    assert (code, len(out.splitlines())) == (0, 1), err  # the header only


def test_sql_period_defaults_like_report(capsys, stores):
    query = "SELECT toDayOfMonth({since:DateTime64(6)}) AS d, {until:DateTime64(6)} > now() - 60 AS recent"
    code, out, err = cli(capsys, "sql", "--data-dir", stores["direct"], "--format", "csv", query)
    assert (code, out) == (0, "d,recent\n1,1\n"), err


def test_sql_period_given_twice_is_an_error(capsys, stores):
    code, _, err = cli(
        capsys,
        "sql",
        "--data-dir",
        stores["direct"],
        "--since",
        "7d",
        "--param",
        "since=2026-11-01",
        "SELECT {since:String}",
    )
    assert code == 2 and "--since or --param since" in err


def test_sql_bad_period_is_an_error(capsys, stores):
    code, _, err = cli(
        capsys, "sql", "--data-dir", stores["direct"], "--since", "soon", "SELECT {since:Date}"
    )
    assert code == 2 and "cannot read time" in err


# --- the processor's state file and the data directory ----------------------------------------


def test_stale_state_file_falls_back_to_the_store(capsys, stores, tmp_path):
    """After `kill -9` of serve its state file stays, and its pid may live on (a zombie, or
    reused): nothing listening there means the store is free, so read it directly."""
    data_dir = tmp_path / "stale"
    make_store(str(data_dir))
    state = {"pid": os.getpid(), "http_url": f"http://127.0.0.1:{free_port()}", "grpc_port": 1}
    (data_dir / STATE_FILE_NAME).write_text(json.dumps(state))
    code, out, err = cli(
        capsys, "sql", "--data-dir", str(data_dir), "--format", "csv", "SELECT 1 AS one"
    )
    assert (code, out, err) == (0, "one\n1\n", "")


HOLD = """
import sys
from llm_margin.processor.storage import Store
store = Store.open(data_dir=sys.argv[1])
print("open", flush=True)
sys.stdin.read()
store.close()
"""


def test_data_dir_in_use_is_a_clear_error(capsys, stores, tmp_path):
    """Another command (not serve) holding the store: say so, no chDB traceback."""
    data_dir = make_store(str(tmp_path / "held"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, data_dir],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        code, out, err = cli(capsys, "sql", "--data-dir", data_dir, "SELECT 1")
        # As a command: chDB's own "Cannot lock file" line must not come before ours.
        command = subprocess.run(
            [bin_path("llm-margin"), "sql", "--data-dir", data_dir, "SELECT 1"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert code == 2 and out == ""
    assert f"data directory {os.path.abspath(data_dir)} is in use by another process" in err
    assert f"(pid {holder.pid})" in err and "Traceback" not in err
    assert command.returncode == 2 and command.stdout == ""
    assert command.stderr.startswith("llm-margin sql: the data directory"), command.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ("sql", "SELECT 1"),
        ("report", "customers"),
        ("export", "--period", "2026-11"),
        ("reconcile", "--provider-usage", "examples/provider-usage-openai.csv"),
    ],
    ids=lambda a: a[0],
)
def test_missing_data_dir_is_an_error_not_an_empty_store(capsys, tmp_path, argv):
    missing = tmp_path / "typo"
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    argv = tuple(os.path.join(root, a) if a.startswith("examples/") else a for a in argv)
    code, out, err = cli(capsys, *argv, "--data-dir", str(missing))
    assert (code, out) == (2, "")
    assert err == f"llm-margin {argv[0]}: no llm-margin data at {missing}\n"
    assert not missing.exists()


def test_failure_while_answering_is_a_500_and_one_cli_line(capsys, tmp_path):
    """Whatever breaks after the query ran, the caller gets an HTTP answer (not a dropped
    connection) and the CLI prints it as one line."""
    from llm_margin.processor.metrics import Metrics
    from llm_margin.processor.receiver.otlp_http import OtlpHttpServer

    def broken_runner(sql, parameters):
        return object()  # no columns or rows: building the answer fails

    server = OtlpHttpServer("127.0.0.1", 0, None, Metrics(), broken_runner)
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        data_dir = tmp_path / "data"
        (data_dir / "metadata").mkdir(parents=True)
        state = {"pid": os.getpid(), "http_url": url, "grpc_port": 1}
        (data_dir / STATE_FILE_NAME).write_text(json.dumps(state))
        code, out, err = cli(capsys, "sql", "--data-dir", str(data_dir), "SELECT 1")
    finally:
        server.stop()
    assert (code, out) == (2, "")
    assert err.startswith(f"llm-margin sql: running processor at {url} answered 500: ")
    assert "internal error" in err and len(err.splitlines()) == 1
