"""A new database made by :mod:`flows.startup.prefect_database` is the one Prefect's migrations make.

Each database is made in a subprocess with its own ``PREFECT_HOME``: one by
Prefect's command (``prefect server database upgrade``), one by ours. Compared:
every table, index and trigger as SQLite stores it (``sqlite_master``, the
``.schema`` dump), the Alembic revision and the rows each table holds. Within a
``CREATE TABLE`` the order of the ``CONSTRAINT`` clauses is ignored: Prefect's
own migrations write it in a different order from one run to the next (it comes
from reflecting foreign keys in SQLite's batch alterations).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.constants import REPO_ROOT

MAKE_OURS = "from flows.startup.prefect_database import create_database_at_head; print(create_database_at_head())"


def _env(home: Path, **extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    environment.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONPATH=str(REPO_ROOT))
    environment.update(extra)
    return environment


def _normalised(sql: str | None) -> tuple[str, ...]:
    """A table's SQL as its lines, the constraint clauses sorted (their order varies between runs)."""
    lines = [line.strip().rstrip(",").strip() for line in (sql or "").splitlines()]
    constraints = sorted(line for line in lines if line.startswith("CONSTRAINT"))
    return tuple(line for line in lines if not line.startswith("CONSTRAINT")) + tuple(constraints)


def _dump(path: Path) -> tuple[str, set[tuple[str, str, str, tuple[str, ...]]], dict[str, int]]:
    """(revision, schema entries, rows per table) of the database at ``path``."""
    with sqlite3.connect(path) as connection:
        revision = connection.execute("select version_num from alembic_version").fetchall()
        entries = connection.execute(
            "select type, name, tbl_name, sql from sqlite_master where type in ('table', 'index', 'trigger', 'view')"
        ).fetchall()
        rows = {
            name: connection.execute(f'select count(*) from "{name}"').fetchone()[0]
            for kind, name, _, _ in entries
            if kind == "table" and not name.startswith("sqlite_")
        }
    assert len(revision) == 1
    return revision[0][0], {(kind, name, table, _normalised(sql)) for kind, name, table, sql in entries}, rows


@pytest.mark.slow
def test_a_new_database_is_the_one_prefects_migrations_make(tmp_path):
    prefects, ours = tmp_path / "prefect", tmp_path / "ours"
    subprocess.run(
        [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
        env=_env(prefects),
        check=True,
        capture_output=True,
        timeout=600,
    )
    made = subprocess.run(
        [sys.executable, "-c", MAKE_OURS], env=_env(ours), check=True, capture_output=True, text=True, timeout=600
    )
    assert made.stdout.strip() == str(ours / "prefect.db")
    assert sorted(path.name for path in ours.iterdir()) == ["prefect.db"]  # no temporary file left
    revision, schema, rows = _dump(ours / "prefect.db")
    expected_revision, expected_schema, expected_rows = _dump(prefects / "prefect.db")
    assert revision == expected_revision
    assert {entry[:2] for entry in schema} == {entry[:2] for entry in expected_schema}
    assert schema == expected_schema
    assert rows == expected_rows


def test_an_existing_or_non_sqlite_database_is_left_to_prefect(tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "prefect.db").write_bytes(b"")
    postgres = "postgresql+asyncpg://user:secret@127.0.0.1:1/prefect"
    for home, extra in (
        (existing, {}),
        (tmp_path / "postgres", {"PREFECT_API_DATABASE_CONNECTION_URL": postgres}),
        (tmp_path / "no-migrations", {"PREFECT_API_DATABASE_MIGRATE_ON_START": "false"}),
    ):
        result = subprocess.run(
            [sys.executable, "-c", MAKE_OURS], env=_env(home, **extra), check=True, capture_output=True, text=True
        )
        assert result.stdout.strip() == "None"
    assert (existing / "prefect.db").read_bytes() == b""
    assert not (tmp_path / "postgres" / "prefect.db").exists()
    assert not (tmp_path / "no-migrations" / "prefect.db").exists()
