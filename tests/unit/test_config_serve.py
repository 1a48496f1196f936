"""Serve configuration: validated once at start; schema upgrade statements (pure)."""

from __future__ import annotations

import pytest
from llm_margin.clickhouse import schema_statements
from llm_margin.processor.config import ConfigError, ServeConfig, load_serve_config
from llm_margin.processor.schema_upgrade import add_column_statements, declared_columns


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"otlp_grpc_port": 70000}, "otlp_grpc_port"),
        ({"otlp_grpc_port": 5000, "otlp_http_port": 5000}, "must differ"),
        ({"max_body_bytes": 10}, "max_body_bytes"),
        ({"max_body_bytes": 2**31}, "max_body_bytes"),  # past gRPC's int message limit
        ({"queue_max_records": 0}, "queue_max_records"),
        ({"max_concurrent_exports": 0}, "max_concurrent_exports"),
        ({"max_concurrent_exports": 1025}, "max_concurrent_exports"),
        ({"max_concurrent_exports": True}, "max_concurrent_exports"),
        ({"max_concurrent_exports": 2.5}, "max_concurrent_exports"),
        # A compressed body and what it inflates to are held together: below twice
        # max_body_bytes a large one could never fit, and would be told to retry forever.
        ({"max_inflight_body_bytes": 2 * 16 * 1024 * 1024 - 1}, "max_inflight_body_bytes"),
        ({"max_body_bytes": 1024, "max_inflight_body_bytes": 2047}, "at least twice"),
        ({"max_inflight_body_bytes": True}, "max_inflight_body_bytes"),
        ({"max_inflight_body_bytes": 1.0e9}, "max_inflight_body_bytes"),
        ({"spool_max_bytes": 100}, "spool_max_bytes"),
        ({"drain_seconds": 0}, "drain_seconds"),
        ({"clickhouse_http_port": -1}, "clickhouse_http_port"),
        ({"clickhouse_http_port": 4318}, "differ from the OTLP ports"),
        (
            {"clickhouse_http_port": 9000, "clickhouse_url": "http://h:8123"},
            "cannot be combined",
        ),
        ({"clickhouse_http_writable": "yes"}, "true or false"),
        (
            {"clickhouse_http_port": 8123, "clickhouse_http_writable": True, "host": "0.0.0.0"},
            "needs auth_token",
        ),
        ({"create_schema": "no"}, "true or false"),
        ({"auth_token": "short"}, "auth_token"),
        ({"clickhouse_url": "ftp://x"}, "clickhouse_url"),
        # YAML `true` / `yes` is a bool, which Python counts as the integer 1: not a number here.
        ({"otlp_grpc_port": True}, "otlp_grpc_port"),
        ({"otlp_http_port": False}, "otlp_http_port"),
        ({"queue_max_records": True}, "queue_max_records"),
        ({"ack_timeout_seconds": True}, "ack_timeout_seconds"),
        ({"drain_seconds": True}, "drain_seconds"),
        ({"clickhouse_http_port": True}, "clickhouse_http_port"),
        # A YAML number or list where text belongs: a traceback, or an int path read as a
        # file descriptor, before.
        ({"clickhouse_url": 5}, "clickhouse_url must be a non-empty string"),
        ({"auth_token": 12345678}, "auth_token must be a non-empty string"),
        ({"host": 5}, "host must be a non-empty string"),
        ({"database": ["x"]}, "database must be a non-empty string"),
        ({"data_dir": ""}, "data_dir must be a non-empty string"),
        ({"spool_dir": 5}, "spool_dir must be a non-empty string"),
        ({"price_overlay": 12345}, "price_overlay must be a non-empty string"),
        ({"billing_file": 12345}, "billing_file must be a non-empty string"),
        ({"drain_seconds": float("nan")}, "drain_seconds"),
        ({"task_finalize_seconds": float("nan")}, "task_finalize_seconds"),
        ({"ack_timeout_seconds": float("inf")}, "ack_timeout_seconds"),
        # the answer bounds of /api/query and the ClickHouse HTTP interface (0: none)
        ({"max_result_rows": -1}, "max_result_rows must be an integer >= 0"),
        ({"max_result_rows": True}, "max_result_rows"),
        ({"max_result_rows": "1000"}, "max_result_rows"),
        ({"max_result_bytes": 1.5e9}, "max_result_bytes"),
        ({"max_result_bytes": 2**63}, "max_result_bytes"),
    ],
)
def test_invalid_values_fail_fast_with_the_field_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        ServeConfig(**overrides).validate()


def test_max_inflight_body_bytes_defaults_to_256_mib_and_takes_twice_max_body_bytes():
    assert ServeConfig().validate().max_inflight_body_bytes == 256 * 1024 * 1024
    config = ServeConfig(max_body_bytes=1024, max_inflight_body_bytes=2048).validate()
    assert config.max_inflight_body_bytes == 2048


def test_config_file_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_bytes(b"\xff\xfe data_dir: x\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_serve_config(str(path), {})


def test_config_file_with_bom_and_crlf_is_read(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_bytes(b"\xef\xbb\xbfdrain_seconds: 3\r\nhost: 127.0.0.1\r\n")
    config = load_serve_config(str(path), {})
    assert config.drain_seconds == 3
    assert config.host == "127.0.0.1"


def test_file_env_and_flags_layering(tmp_path, monkeypatch):
    path = tmp_path / "serve.yaml"
    path.write_text("spool_dir: spool-here\nclickhouse_http_port: 0\ndrain_seconds: 3\n")
    monkeypatch.setenv("LLM_MARGIN_AUTH_TOKEN", "from-the-environment")
    config = load_serve_config(str(path), {"drain_seconds": 7, "spool_max_bytes": None})
    assert config.resolved_spool_dir == str(tmp_path / "spool-here")
    assert config.clickhouse_http_port == 0
    assert config.drain_seconds == 7
    assert config.spool_max_bytes == 1024 * 1024 * 1024
    assert config.auth_token == "from-the-environment"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (ServeConfig(data_dir="/d"), "/d/spool"),
        (ServeConfig(clickhouse_url="http://h:8123"), "./llm-margin-spool"),
        (ServeConfig(spool_dir="/s"), "/s"),
    ],
)
def test_spool_dir_defaults(config, expected):
    assert config.resolved_spool_dir == expected


def test_unknown_keys_are_refused(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_text("spool_size: 5\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_serve_config(str(path), {})


CREATE = """
-- a comment (with parentheses)
CREATE TABLE IF NOT EXISTS demo
(
    id      String,
    amount  Decimal(38, 18),  -- money
    at      DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx amount TYPE minmax GRANULARITY 1
)
ENGINE = MergeTree ORDER BY id
"""


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (
            ["id"],
            [
                "ALTER TABLE `demo` ADD COLUMN IF NOT EXISTS `amount` Decimal(38, 18)",
                "ALTER TABLE `demo` ADD COLUMN IF NOT EXISTS `at` "
                "DateTime64(3, 'UTC') DEFAULT now64(3)",
            ],
        ),
        (["id", "amount", "at"], []),
    ],
)
def test_add_column_statements(existing, expected):
    table, columns = declared_columns(CREATE)
    assert table == "demo"
    assert [name for name, _ in columns] == ["id", "amount", "at"]
    assert add_column_statements(table, columns, existing) == expected


def test_every_shipped_schema_file_is_safe_to_rerun():
    """Start-up runs every DDL file on every start: each must be idempotent."""
    for statement in schema_statements():
        text = " ".join(statement.split()).upper()
        # CREATE OR REPLACE (views) is idempotent too, and upgrades the view's query.
        assert "IF NOT EXISTS" in text or "CREATE OR REPLACE VIEW" in text, statement[:200]
        parsed = declared_columns(statement)
        if parsed is not None:
            assert parsed[1], f"no columns parsed from {parsed[0]}"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"plans: 5\n", "plans must be a mapping by name"),
        (b"customers: [acme]\n", "customers must be a mapping by name"),
        (b"\xff billing\n", "cannot read billing file"),
        (b"customers:\n  acme: {plan: nosuch}\n", "unknown plan 'nosuch'"),
        (b"plans: {}\nbudgets: 5\n", "budgets: must be a mapping"),
    ],
)
def test_a_bad_billing_file_fails_at_start(tmp_path, content, message):
    # It was read only once the store was open: a traceback, its own ConfigError included.
    path = tmp_path / "billing.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_serve_config(None, {"billing_file": str(path)})


def test_the_demo_billing_file_is_accepted():
    from importlib import resources

    path = resources.files("llm_margin.demo") / "billing.yaml"
    assert load_serve_config(None, {"billing_file": str(path)}).billing_file == str(path)


def test_a_large_max_body_bytes_raises_the_default_body_budget_instead_of_failing():
    config = ServeConfig(max_body_bytes=512 * 1024 * 1024).validate()
    assert config.max_inflight_body_bytes == 1024 * 1024 * 1024


def test_an_unvalidated_config_still_has_a_body_budget():
    """Processor(ServeConfig(...)) built in code, without validate(), still starts."""
    assert ServeConfig().inflight_body_bytes() == 256 * 1024 * 1024
    assert ServeConfig(max_body_bytes=300 * 1024 * 1024).inflight_body_bytes() == 600 * 1024 * 1024


def test_result_limits_default_to_500_000_rows_and_32_mib_and_layer_like_the_rest(tmp_path):
    from llm_margin.processor.readonly_sql import ResultLimits

    assert ServeConfig().validate().result_limits == ResultLimits(500_000, 32 * 1024**2)
    path = tmp_path / "serve.yaml"
    path.write_text("max_result_rows: 0\nmax_result_bytes: 1024\n")
    config = load_serve_config(str(path), {"max_result_bytes": 2048, "max_result_rows": None})
    assert config.result_limits == ResultLimits(rows=0, bytes=2048)
