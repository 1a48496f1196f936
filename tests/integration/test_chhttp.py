"""The embedded store over the ClickHouse HTTP interface: clickhouse-connect and curl-style
clients read it; it is read-only and token-protected unless configured otherwise."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from llm_margin.processor.config import ServeConfig
from llm_margin.processor.receiver.synthetic import make_request
from llm_margin.processor.server import Processor

from tests.conftest import free_port

pytestmark = pytest.mark.integration

TOKEN = "ch-token-4567"


def start_processor(tmp_path, **settings) -> Processor:
    """A started processor on loopback with its ClickHouse HTTP interface on a free port."""
    config = ServeConfig(
        data_dir=str(tmp_path / "data"),
        otlp_grpc_port=free_port(),
        otlp_http_port=free_port(),
        clickhouse_http_port=0,
        **settings,
    ).validate()
    proc = Processor(config)
    proc.start()
    return proc


@pytest.fixture
def served(tmp_path):
    proc = start_processor(tmp_path, auth_token=TOKEN)
    try:
        body = make_request(0, 40).SerializeToString()
        request = urllib.request.Request(proc.http_url + "/v1/traces", data=body, method="POST")
        request.add_header("Content-Type", "application/x-protobuf")
        request.add_header("Authorization", f"Bearer {TOKEN}")
        assert urllib.request.urlopen(request, timeout=30).status == 200
        yield proc
    finally:
        proc.stop()


def call(proc, query: str | None = None, body: bytes | None = None, headers=None, **params):
    if query is not None:
        params["query"] = query
    url = f"http://127.0.0.1:{proc.clickhouse_http.port}/?" + urllib.parse.urlencode(params)
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if headers is None:
        headers = {"X-ClickHouse-Key": TOKEN}
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_clickhouse_connect_reads_through_it(served):
    client = clickhouse_connect.get_client(
        host="127.0.0.1",
        port=served.clickhouse_http.port,
        password=TOKEN,
        database="llm_margin",
    )
    try:
        expected = served.store.query(
            "SELECT customer_id, count(), sum(cost_usd) FROM llm_calls FINAL "
            "GROUP BY customer_id ORDER BY customer_id"
        ).rows
        result = client.query(
            "SELECT customer_id, count(), sum(cost_usd) FROM llm_calls FINAL "
            "WHERE customer_id LIKE {prefix:String} GROUP BY customer_id ORDER BY customer_id",
            parameters={"prefix": "cust-%"},
        )
        assert [tuple(r) for r in result.result_rows] == expected
        assert sum(r[1] for r in expected) == 40
        assert all(isinstance(r[2], Decimal) and r[2] > 0 for r in result.result_rows)
        assert client.command("SELECT count() FROM llm_calls FINAL") == 40
        with pytest.raises(DatabaseError) as info:
            client.command("DROP TABLE llm_calls")
        assert "164" in str(info.value) or "readonly" in str(info.value).lower()
    finally:
        client.close()
    assert served.store.query("SELECT count() FROM llm_calls FINAL").rows == [(40,)]


def test_formats_parameters_and_headers(served):
    status, headers, body = call(served, "SELECT count() FROM llm_calls FINAL")
    assert (status, body) == (200, b"40\n")
    assert headers["X-ClickHouse-Format"] == "TabSeparated"
    assert headers["X-ClickHouse-Timezone"]
    assert "read_rows" in json.loads(headers["X-ClickHouse-Summary"])

    status, headers, body = call(
        served,
        "SELECT span_id, input_tokens FROM llm_calls FINAL WHERE span_id = {id:String}",
        param_id=f"{1:016x}",
        default_format="JSON",
        database="llm_margin",
    )
    assert status == 200 and headers["X-ClickHouse-Format"] == "JSON"
    assert json.loads(body)["data"] == [{"span_id": f"{1:016x}", "input_tokens": 100}]

    status, headers, body = call(
        served, "SELECT toUInt32(7) AS n, 'ab' AS s FORMAT RowBinaryWithNamesAndTypes"
    )
    assert status == 200 and headers["X-ClickHouse-Format"] == "RowBinaryWithNamesAndTypes"
    assert body.endswith(b"\x07\x00\x00\x00\x02ab")

    # Statement in the body (curl --data-binary), settings as URL parameters.
    status, _, body = call(
        served, None, body=b"SELECT number FROM system.numbers LIMIT 3", max_threads="1"
    )
    assert (status, body) == (200, b"0\n1\n2\n")

    status, headers, body = call(served, "SELECT nope FROM nowhere")
    assert status >= 400 and headers["X-ClickHouse-Exception-Code"] != "0"
    assert body.startswith(b"Code: ")


def test_read_only_and_token_protected(served):
    for statement in (
        "INSERT INTO llm_calls (span_id) VALUES ('x')",
        "DROP TABLE llm_calls",
        "SET readonly = 0; DROP TABLE llm_calls",
    ):
        status, headers, _ = call(served, None, body=statement.encode(), database="llm_margin")
        assert status >= 400, statement
        assert headers["X-ClickHouse-Exception-Code"] == "164", statement
    assert served.store.query("SELECT count() FROM llm_calls FINAL").rows == [(40,)]

    query = "SELECT 1"
    assert call(served, query, headers={})[0] == 401
    wrong = {"X-ClickHouse-Key": "nope-nope-nope"}
    status, headers, _ = call(served, query, headers=wrong)
    assert status == 401 and headers["X-ClickHouse-Exception-Code"] == "516"
    basic = base64.b64encode(f"default:{TOKEN}".encode()).decode()
    for headers in (
        {"Authorization": f"Bearer {TOKEN}"},
        {"Authorization": f"Basic {basic}"},
        {"X-ClickHouse-Key": TOKEN},
    ):
        assert call(served, query, headers=headers)[2] == b"1\n", headers
    assert call(served, query, headers={}, password=TOKEN)[2] == b"1\n"
    # /ping answers without a token (load balancers probe it).
    with urllib.request.urlopen(
        f"http://127.0.0.1:{served.clickhouse_http.port}/ping", timeout=10
    ) as response:
        assert response.read() == b"Ok.\n"


def test_read_only_refuses_what_readonly_setting_lets_through(served, tmp_path):
    """`readonly = 1` alone lets INTO OUTFILE write a file on the processor's host, SYSTEM STOP
    MERGES pause the store's merges and KILL QUERY cancel the processor's own queries."""
    target = tmp_path / "leak.csv"
    for statement in (
        f"SELECT * FROM llm_calls INTO OUTFILE '{target}' FORMAT CSV",
        f"SELECT 1 INTO/**/OUTFILE '{target}'",
        "SELECT 1 // it's a comment to ClickHouse\n; SYSTEM STOP MERGES; -- '",
        "SYSTEM STOP MERGES",
        "KILL QUERY WHERE 1",
        "SELECT 1; KILL QUERY WHERE 1",
    ):
        for method_body in ({"body": statement.encode()}, {"query": statement}):
            status, headers, body = call(served, database="llm_margin", **method_body)
            assert (status, headers["X-ClickHouse-Exception-Code"]) == (403, "164"), statement
            assert body.startswith(b"Code: 164. DB::Exception: "), body
    assert not target.exists()
    # What is refused through the ClickHouse HTTP interface is refused through /api/query
    # (what `llm-margin sql` and reports use while serve runs).
    from clickhouse_connect.driver.exceptions import DatabaseError as ConnectError

    for statement in (f"SELECT 1 INTO OUTFILE '{target}'", "SYSTEM STOP MERGES"):
        with pytest.raises(ConnectError, match="Code: 164"):
            served.store.query_readonly(statement)
    assert not target.exists()
    assert served.store.query_readonly("SELECT count() FROM llm_calls FINAL").rows == [(40,)]


def test_error_statuses_are_clickhouses(served):
    """The query's fault is a 4xx, as ClickHouse answers, not a 500 (server failure)."""
    for statement, status, code in (
        ("SELEC 1", 400, "62"),
        ("SELECT nope FROM nowhere", 404, "60"),
        ("SELECT 1 FROM nodb.t", 404, "81"),
    ):
        got, headers, body = call(served, statement)
        assert (got, headers["X-ClickHouse-Exception-Code"]) == (status, code), statement
        assert b"formatQuery" not in body, body  # the statement's own error, not the guard's


def test_parameters_sent_as_a_multipart_form(served):
    """clickhouse-connect sends the query and its parameters as multipart/form-data once they
    are too long for a URL (or when asked to): the interface took the whole form for SQL."""
    ids = [f"{n:016x}" for n in range(1, 41)] + [f"{n:016x}" for n in range(1000, 3000)]
    for force in (False, True):
        client = clickhouse_connect.get_client(
            host="127.0.0.1",
            port=served.clickhouse_http.port,
            password=TOKEN,
            database="llm_margin",
            form_encode_query_params=force,
        )
        try:
            result = client.query(
                "SELECT count(), {note:String} FROM llm_calls FINAL WHERE span_id IN {ids:Array(String)}",
                parameters={"ids": ids, "note": "a\r\nb\n"},
            )
            assert result.result_rows == [(40, "a\r\nb\n")]
        finally:
            client.close()
    # Files in the form would be external tables: refused by name, not run as SQL.
    boundary = "llm-margin-test"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="query"\r\n\r\nSELECT 1\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="t"; filename="t.tsv"\r\n'
        f"\r\n1\r\n--{boundary}--\r\n"
    ).encode()
    status, headers, text = call(
        served,
        body=body,
        headers={
            "X-ClickHouse-Key": TOKEN,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert status == 501 and b"external tables are not supported" in text


def test_read_commands_through_it_with_a_read_only_user(served):
    """`--clickhouse-url` to a read-only server: `reprice --dry-run` reads only (it used to
    create the schema first and fail), and a server's refusal is one line, exit 2, not a
    traceback."""
    import subprocess

    from tests.conftest import bin_path

    def run(password: str, *args: str) -> subprocess.CompletedProcess:
        url = f"http://default:{password}@127.0.0.1:{served.clickhouse_http.port}"
        return subprocess.run(
            [bin_path("llm-margin"), *args, "--clickhouse-url", url],
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = run(TOKEN, "reprice", "--since", "1d", "--dry-run", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["calls"] == 40
    done = run("wrong-password", "report", "customers")
    assert done.returncode == 2
    assert (
        done.stderr.startswith("llm-margin report: Code: 516.")
        and len(done.stderr.splitlines()) == 1
    )
    done = run(TOKEN, "reprice", "--since", "1d")  # writes: refused by the read-only server
    assert done.returncode == 2 and "Code: 164." in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_compressed_answers_when_asked(served):
    """`enable_http_compression=1` with an Accept-Encoding the server has: a compressed answer,
    as ClickHouse gives (curl --compressed, Grafana); without the setting, plain."""
    import gzip
    import zlib

    query = "SELECT count() FROM llm_calls FINAL"
    for accept, decode in (("gzip", gzip.decompress), ("br;q=1.0, deflate", zlib.decompress)):
        headers = {"X-ClickHouse-Key": TOKEN, "Accept-Encoding": accept}
        status, got, body = call(
            served, query, headers=headers, database="llm_margin", enable_http_compression="1"
        )
        assert status == 200 and got["Content-Encoding"] == accept.split(", ")[-1]
        assert decode(body) == b"40\n"
    headers = {"X-ClickHouse-Key": TOKEN, "Accept-Encoding": "gzip"}
    status, got, body = call(served, query, headers=headers, database="llm_margin")
    assert (status, body, got.get("Content-Encoding")) == (200, b"40\n", None)


def test_read_only_callers_cannot_reach_files_or_unbounded_sessions(served, tmp_path):
    """A security review's findings: settings in the URL that write files (output_format_schema
    with a Protobuf format wrote a .pth file: code execution at the next Python start), the
    file() function (it read /proc/self/environ, the auth token with it), and %(name)s
    parameters bound after the check (a value ending its quotes added INTO OUTFILE)."""
    target = tmp_path / "zz.pth"
    status, headers, body = call(
        served,
        "SELECT 1 AS x FORMAT ProtobufSingle",
        database="llm_margin",
        output_format_schema=str(target),
    )
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (403, "164"), body
    assert b"output_format_schema" in body
    for statement in ("SELECT file('/proc/self/environ')", "SELECT length(file('/etc/hostname'))"):
        status, headers, body = call(served, statement)
        assert (status, headers["X-ClickHouse-Exception-Code"]) == (403, "164"), body
        with pytest.raises(DatabaseError, match="Code: 164"):
            served.store.query_readonly(statement)
    escape = {"a": f" AS a INTO OUTFILE '{target}' -- "}
    with pytest.raises(DatabaseError, match=r"only \{name:Type\} query parameters"):
        served.store.query_readonly("SELECT '%(a)s'", escape)
    assert not target.exists()
    # Harmless settings still pass, the session's bounds hold whatever the URL says.
    assert call(served, "SELECT 1", output_format_json_quote_64bit_integers="0")[0] == 200
    status, _, body = call(served, "SELECT getSetting('max_execution_time')")
    assert (status, body) == (200, b"300\n")
    assert served.store.query_readonly("SELECT getSetting('max_memory_usage')").rows == [
        (4 * 1024**3,)
    ]
    assert call(served, "SELECT 1", max_execution_time="0")[0] == 403


def test_unauthenticated_and_malformed_bodies_cost_nothing(served, monkeypatch):
    """A gzip bomb is refused before it is read when the caller has no token, and bounded
    when it has one; a malformed chunked body is a 400, not a dropped connection."""
    import gzip
    import http.client

    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB of zeros, ~64 KiB on the wire
    port = served.clickhouse_http.port
    status, headers, _ = call(served, None, body=bomb, headers={"Content-Encoding": "gzip"})
    assert status == 401 and headers["X-ClickHouse-Exception-Code"] == "516"
    from llm_margin.processor import clickhouse_http

    monkeypatch.setattr(clickhouse_http, "MAX_BODY_BYTES", 1024 * 1024)
    gzip_header = {"Content-Encoding": "gzip", "X-ClickHouse-Key": TOKEN}
    assert call(served, None, body=bomb, headers=gzip_header)[0] == 413
    monkeypatch.undo()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", "/?query=SELECT+1")
        connection.putheader("X-ClickHouse-Key", TOKEN)
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        connection.send(b"zz-not-hex\r\nabc\r\n0\r\n\r\n")
        response = connection.getresponse()
        assert response.status == 400
    finally:
        connection.close()
    assert call(served, "SELECT 1")[2] == b"1\n"  # still serving


def test_read_only_callers_cannot_describe_table_functions(served):
    """readonly=1 refuses url() and s3() in a SELECT, but DESCRIBE of a table function opened
    it to infer its schema: a request from the processor's host to any address (a cloud
    metadata service, an internal service), its first line answered as column names."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    fetched = []

    class Secret(BaseHTTPRequestHandler):
        def do_GET(self):
            fetched.append(self.path)
            body = b"secret_header\n1\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, format, *args):
            return

    internal = ThreadingHTTPServer(("127.0.0.1", 0), Secret)
    threading.Thread(target=internal.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{internal.server_address[1]}"
    try:
        for statement in (
            f"DESCRIBE TABLE url('{url}/a', 'CSVWithNames')",
            f"DESC `url`('{url}/b')",
            f"DESCRIBE s3('{url}/bucket/c.csv', 'CSVWithNames')",
        ):
            status, headers, body = call(served, statement)
            assert (status, headers["X-ClickHouse-Exception-Code"]) == (403, "164"), body
            with pytest.raises(DatabaseError, match="Code: 164"):
                served.store.query_readonly(statement)
    finally:
        internal.shutdown()
        internal.server_close()
    assert fetched == []
    # Describing a table or a subquery still works.
    assert call(served, "DESCRIBE TABLE llm_calls", database="llm_margin")[0] == 200
    assert served.store.query_readonly("DESC (SELECT 1 AS x)").rows[0][:2] == ("x", "UInt8")


def test_writable_without_a_token_refuses_statements_from_web_pages(tmp_path):
    """Writable on loopback needs no token, and a web page the user opens can POST a
    text/plain body to 127.0.0.1 without asking the browser first: it wrote a file of its
    choosing and dropped the store. Browsers name the page's origin; programs send none."""
    import http.client

    proc = start_processor(tmp_path, clickhouse_http_writable=True)
    target = tmp_path / "written-by-a-page.txt"
    statement = f"INSERT INTO FUNCTION file('{target}', 'LineAsString') SELECT 'x'".encode()
    port = proc.clickhouse_http.port

    def post(headers):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("POST", "/", body=statement, headers=headers)
            return connection.getresponse().status
        finally:
            connection.close()

    try:
        page = {"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://evil.example"}
        assert post(page) == 403
        assert post({**page, "Origin": "null"}) == 403
        assert not target.exists()
        assert post({}) == 200  # a program's request (curl, a second processor)
        assert target.exists()
    finally:
        proc.stop()
