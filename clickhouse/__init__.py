"""The project's SQL, as files: schema DDL, the task linker and the report queries."""

from __future__ import annotations

from importlib import resources


def read_sql(relative_path: str) -> str:
    """Text of one SQL file shipped in this package, e.g. ``queries/customer_margin.sql``."""
    return resources.files(__name__).joinpath(relative_path).read_text(encoding="utf-8")


def schema_statements() -> list[str]:
    """DDL files of ``schema/`` in their numbered order (each file is one statement)."""
    folder = resources.files(__name__).joinpath("schema")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [folder.joinpath(n).read_text(encoding="utf-8") for n in names]
