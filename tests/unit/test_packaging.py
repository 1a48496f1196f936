"""The wheel must ship every package and SQL file: the folders map onto llm_margin.*."""

from __future__ import annotations

import pathlib

import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_python_folder_is_a_listed_package():
    setuptools = _config()
    mapping = setuptools["package-dir"]
    listed = set(setuptools["packages"])
    found = set()
    for package, folder in mapping.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base)
            name = ".".join((package, *relative.parts)) if relative.parts else package
            # A folder mapped separately is found under its own mapping.
            if any(
                name != other and name.startswith(other + ".") and other != package
                for other in mapping
            ):
                continue
            found.add(name)
    missing = sorted(found - listed)
    assert not missing, f"add to [tool.setuptools] packages: {missing}"


def test_app_side_dependencies_stay_light():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    heavy = ("chdb", "clickhouse-connect", "grpcio", "genai-prices")
    assert not [d for d in project["dependencies"] if d.startswith(heavy)]
    assert all(
        any(d.startswith(h) for d in project["optional-dependencies"]["processor"]) for h in heavy
    )


def test_sql_files_are_package_data():
    globs = _config()["package-data"]["llm_margin.clickhouse"]
    for sql in (ROOT / "clickhouse").rglob("*.sql"):
        relative = sql.relative_to(ROOT / "clickhouse")
        pattern = f"{relative.parent}/*.sql" if relative.parent.parts else "*.sql"
        assert pattern in globs, f"{relative} is not shipped: add {pattern!r} to package-data"
