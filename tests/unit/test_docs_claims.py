"""Claims of the user manual that can be checked mechanically: the README's commands table
against the CLI, the metric names of docs/ against what /metrics exposes, the configuration
table against the config loader, and the YAML examples against their loaders."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from pathlib import Path

from llm_margin.processor.billing import load_billing_file
from llm_margin.processor.budgets.config import load_budget_config
from llm_margin.processor.cli import COMMAND_MODULES, build_parser
from llm_margin.processor.config import ServeConfig
from llm_margin.processor.metrics import Metrics
from llm_margin.processor.pricing.overlay import load_overlay

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every option of a command, its subcommands' included (`prices show|check`)."""
    flags = {flag for action in parser._actions for flag in action.option_strings}
    for sub in _subcommands(parser).values():
        flags |= _flags(sub)
    return flags


def _commands_table() -> dict[str, str]:
    """README's Commands table: command name -> its row."""
    section = (ROOT / "README.md").read_text().split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `(\w+)", line)
        if match:
            rows[match.group(1)] = line
    return rows


def test_readme_commands_table_lists_every_command_with_real_flags():
    commands = _subcommands(build_parser())
    table = _commands_table()
    assert set(table) == set(COMMAND_MODULES) == set(commands)
    for name, row in table.items():
        shown = set(re.findall(r"--[a-z][a-z-]*", row))
        assert shown <= _flags(commands[name]), (name, shown - _flags(commands[name]))


def test_readme_lists_every_report_view():
    report = _subcommands(build_parser())["report"]
    view = next(a for a in report._actions if a.dest == "view")
    row = _commands_table()["report"]
    assert re.search(r"`report ([\w\\|]+)`", row).group(1).split("\\|") == list(view.choices)


def _exposed_metrics() -> set[str]:
    return {
        line.split()[2] for line in Metrics().render().splitlines() if line.startswith("# TYPE ")
    }


def test_every_exposed_metric_is_documented_and_every_documented_one_exposed():
    exposed = _exposed_metrics()
    text = "\n".join(path.read_text() for path in DOCS)
    # Full names, and the table's shorthand (`_received_llm_spans_total` after a full name).
    named = set(re.findall(r"llm_margin_[a-z_]+?_(?:total|seconds|depth|bytes)\b", text))
    named |= {f"llm_margin{m}" for m in re.findall(r"`(_[a-z_]+_(?:total|bytes))`", text)}
    assert named - exposed == set(), "documented but not exposed"
    assert exposed - named == set(), "exposed but not documented"


def test_deployment_cluster_table_names_every_cluster_table_and_view():
    """docs/deployment.md's cluster table names every table and view `clickhouse/cluster/` creates
    (a `_local` table goes with its Distributed one)."""
    created = set()
    for path in (ROOT / "clickhouse" / "cluster").glob("*.sql"):
        created |= set(
            re.findall(
                r"CREATE (?:OR REPLACE )?(?:TABLE|(?:MATERIALIZED )?VIEW) (?:IF NOT EXISTS )?"
                r"(?:\S+\.)?(\w+)",
                path.read_text(),
            )
        )
    text = (ROOT / "docs" / "deployment.md").read_text()
    section = text.split("### ClickHouse cluster", 1)[1].split("\n### ", 1)[0]
    named = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            named |= set(re.findall(r"`(\w+)`", line.split("|")[1]))
            named |= set(re.findall(r"view `(\w+)`", line))
    expected = {name.removesuffix("_local") for name in created}
    assert expected - named == set(), "created on a cluster but not in docs/deployment.md"
    assert named - expected == set(), "in docs/deployment.md but not created on a cluster"


def test_every_flag_shown_after_a_command_in_the_docs_is_that_commands():
    """`llm-margin <command> ... --flag` in the manuals (code and inline, continuation lines
    joined) uses only flags that command (or one of its subcommands) takes."""
    commands = _subcommands(build_parser())
    wrong = []
    for path in [*DOCS, ROOT / "instrumentation" / "README_SECTION.md"]:
        text = re.sub(r"\\\n\s*", " ", path.read_text())
        for match in re.finditer(r"llm-margin (?:-v )?(\w+)([^\n`]*)", text):
            name, rest = match.groups()
            if name not in commands:
                continue
            shown = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest)) - {"--help"}
            unknown = shown - _flags(commands[name])
            if unknown:
                wrong.append((path.name, name, sorted(unknown)))
    assert wrong == []


def test_config_reference_table_is_serve_configs_keys_and_serve_flags():
    """docs/operations.md's configuration table names every key the config file takes (and no
    other: unknown keys are refused at start) and, beside each, a real `serve` flag; every
    `serve` flag but --config is in it."""
    section = (ROOT / "docs" / "operations.md").read_text().split("## Configuration reference")[1]
    section = section.split("\n## ", 1)[0]
    keys, flags = set(), set()
    for line in section.splitlines():
        cells = line.split("|")
        if line.startswith("| `") and len(cells) > 2:
            keys |= set(re.findall(r"`(\w+)`", cells[1]))
            flags |= set(re.findall(r"`(--[a-z-]+)`", cells[2]))
    serve = _subcommands(build_parser())["serve"]
    assert keys == {f.name for f in fields(ServeConfig)}
    assert flags == _flags(serve) - {"-h", "--help", "--config"}


def _yaml_blocks(name: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / name).read_text(), re.S)


def test_yaml_examples_in_the_docs_load(tmp_path):
    """The billing, budgets and overlay examples are files a user copies: each loads as shown."""
    billing = _yaml_blocks("reports-budgets-billing.md")
    overlays = _yaml_blocks("pricing-and-linking.md")
    assert billing and overlays
    for index, text in enumerate(billing):
        path = tmp_path / f"billing-{index}.yaml"
        path.write_text(text)
        load_billing_file(str(path))
        load_budget_config(str(path))
    for index, text in enumerate(overlays):
        path = tmp_path / f"overlay-{index}.yaml"
        path.write_text(text)
        load_overlay(str(path))


def test_report_samples_in_the_docs_have_the_views_title_and_columns():
    """Each `$ llm-margin report VIEW` sample prints that view's title and header as the
    program does now (numbers are a sample; the shape is not)."""
    from llm_margin.processor.reports import customers
    from llm_margin.processor.reports.views import VIEWS

    shapes = {name: (spec.title, list(spec.columns)) for name, spec in VIEWS.items()}
    shapes["customers"] = ("Customer margin", list(customers.COLUMNS))
    checked = 0
    for path in DOCS:
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            match = re.match(r"\$ llm-margin report (\w+)", line)
            if not match or match.group(1) not in shapes or "--format" in line:
                continue
            if lines[index + 1].startswith("llm-margin report:"):  # a refusal, on stderr
                continue
            title, columns = shapes[match.group(1)]
            assert lines[index + 1].startswith(title), (path.name, line)
            assert lines[index + 2].split() == columns, (path.name, line)
            checked += 1
    assert checked >= 8


def test_export_csv_sample_header_is_the_exports():
    from llm_margin.processor.reports.export import CSV_COLUMNS

    text = (ROOT / "docs" / "reports-budgets-billing.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("period,customer_id,"))
    assert header.split(",") == list(CSV_COLUMNS)


def test_price_versions_shown_in_the_docs_are_the_example_overlays():
    """The samples run with examples/price-overlay.yaml: their `price_version` carries its
    hash, which changes with every edit of the example."""
    digest = load_overlay(str(ROOT / "examples" / "price-overlay.yaml")).digest
    shown = {m for doc in DOCS for m in re.findall(r"\+overlay-([0-9a-f]{12})", doc.read_text())}
    assert shown == {digest}


def test_the_overlay_examples_show_every_section():
    """The example overlay and the manual's format block show every section the overlay
    takes (`inference_geos:` was missing from the example, which priced no US-only call)."""
    import yaml
    from llm_margin.processor.pricing.overlay import _SECTIONS

    example = yaml.safe_load((ROOT / "examples" / "price-overlay.yaml").read_text())
    assert set(example) == set(_SECTIONS)
    manual = (ROOT / "docs" / "pricing-and-linking.md").read_text()
    for section in _SECTIONS:
        assert re.search(rf"^{section}:", manual, re.MULTILINE), section


def test_the_result_limit_sample_is_what_sql_prints():
    """docs/operations.md's `llm-margin sql` refusal past the bound is the message the command
    prints with the default bounds (it had lost the `llm-margin sql:` prefix errors carry)."""
    from llm_margin.processor.readonly_sql import ResultLimits, result_limit_message

    text = (ROOT / "docs" / "operations.md").read_text()
    sample = text.split("### Bounded answers", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    command, *message = sample.splitlines()
    assert command == '$ llm-margin sql "SELECT * FROM llm_calls"'
    shown = " ".join(message).split(" ClickHouse said: ")[0]
    printed = (
        "llm-margin sql: running processor at http://127.0.0.1:4318 answered 413: "
        + result_limit_message(ResultLimits(), "")
    ).split(" ClickHouse said: ")[0]
    assert shown == printed


def _schema_columns(name: str) -> set[str]:
    text = (ROOT / "clickhouse" / "schema" / name).read_text()
    return set(re.findall(r"^\s+`?(\w+)`?\s+[A-Z]\w*[\(\w]", text, re.MULTILINE))


def test_cost_and_mode_columns_named_in_the_docs_exist():
    """The `llm_calls` columns README's data model names, and the cost, search, mode and
    sub-usage columns the pricing manual names (restated ones in `llm_call_restatements`),
    are columns of the schema files."""
    calls = _schema_columns("001_llm_calls.sql")
    restated = _schema_columns("010_llm_call_restatements.sql")
    assert {"sub_usage_entry_costs_usd", "inference_geo"} <= calls  # the pattern still reads
    model = (ROOT / "README.md").read_text().split("## Data model", 1)[1]
    model = model.split("`llm_tasks`: one row per task", 1)[0]
    named = set(re.findall(r"`([a-z][a-z0-9_]*)`", model)) - {"llm_calls"}
    assert named - calls == set()
    pricing = (ROOT / "docs" / "pricing-and-linking.md").read_text()
    named = set(
        re.findall(
            r"`((?:restated_)?\w*(?:_usd|sub_usage|_calls|inference_geo|service_tier))`", pricing
        )
    ) - {"llm_calls"}
    assert named - calls - restated == set()


def test_reconcile_help_names_every_explanation_of_the_manual():
    """The explanations docs/reports-budgets-billing.md's reconcile table lists are the ones
    `reconcile --help` names (it left out `not in the provider export` and `not a model's
    tokens`)."""
    text = (ROOT / "docs" / "reports-budgets-billing.md").read_text()
    section = text.split("## Reconciliation with provider cost exports", 1)[1]
    explained = re.findall(r"^\| `([^`]+)` \|", section.split("\n## ", 1)[0], re.MULTILINE)
    assert len(explained) == 7
    reconcile = _subcommands(build_parser())["reconcile"]
    description = " ".join(reconcile.description.split())
    assert [e for e in explained if e not in description] == []
