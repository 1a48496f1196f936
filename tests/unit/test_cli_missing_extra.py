"""An app-side install has the CLI but not the processor's packages: a command that needs
one names the extra to install, in one line, instead of a traceback."""

from __future__ import annotations

import pytest
from llm_margin.processor import cli


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("clickhouse_connect", "processor"),
        ("clickhouse_connect.driver", "processor"),
        ("chdb", "processor"),
        ("grpc", "processor"),
        ("yaml", "processor"),
        ("openai", "processor,demo"),
        ("opentelemetry.exporter.otlp", "processor,demo"),
        ("somebody_elses_module", None),
        ("", None),
    ],
)
def test_missing_extra(module, extra):
    assert cli.missing_extra(module) == extra


def test_a_command_missing_a_processor_package_says_which_extra(monkeypatch, capsys):
    def handler(_args):
        raise ModuleNotFoundError("No module named 'clickhouse_connect'", name="clickhouse_connect")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    args = ["sql", "SELECT 1"]
    original = parser.parse_args
    monkeypatch.setattr(
        parser, "parse_args", lambda argv=None: _with_handler(original(args), handler)
    )
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "llm-margin sql: needs the Python package 'clickhouse_connect': install the extra, "
        "from a checkout of llm-margin: pip install '.[processor]'"
    ]


def test_an_unrelated_missing_module_is_not_hidden(monkeypatch):
    def handler(_args):
        raise ModuleNotFoundError("No module named 'mystery'", name="mystery")

    parser = cli.build_parser()
    original = parser.parse_args
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(
        parser, "parse_args", lambda argv=None: _with_handler(original(["sql", "x"]), handler)
    )
    with pytest.raises(ModuleNotFoundError):
        cli.main(["sql", "x"])


def _with_handler(args, handler):
    args.handler = handler
    return args
