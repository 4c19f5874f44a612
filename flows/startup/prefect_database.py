"""A new Prefect database, made by Prefect's own migrations without the asynchronous driver's cost.

On the very first command of a machine (no ``PREFECT_HOME/prefect.db`` yet) the
server replays every one of Prefect's ~120 SQLite migrations. Prefect runs them
through its asynchronous driver (aiosqlite): each of the ~34,000 statements the
migrations issue (most of them reflecting tables for SQLite's batch
alterations) is a round trip to a driver thread, which is more than half of the
~10 s the replay takes. :func:`create_database_at_head` replays the *same*
migration scripts, with the same Alembic options as Prefect's ``env.py``
(batch mode, one transaction per migration, foreign keys off), through
SQLAlchemy's synchronous SQLite driver, into a new file that then takes the
database's place in one step; the server's own start-up migration then finds
the head revision and has nothing to do. ``tests/flows/startup/
test_prefect_database.py`` proves the result is the database Prefect's
migrations make (schema of every table, index and trigger, and the revision).

Only a missing SQLite file is created this way; an existing database, or any
other database URL, is left to Prefect. Runs in the server's process (which
imports Prefect anyway), before the server app starts.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

__all__ = ["create_database_at_head", "new_sqlite_database"]

_ASYNC_SQLITE_PREFIX = "sqlite+aiosqlite:///"


def new_sqlite_database() -> Path | None:
    """The file of Prefect's configured SQLite database if it does not exist yet and Prefect would create it.

    None for an existing database, another kind of database, or with
    ``PREFECT_API_DATABASE_MIGRATE_ON_START`` off (Prefect would not create it either).
    """
    from prefect.settings import get_current_settings
    from pydantic import SecretStr

    database = get_current_settings().server.database
    if not database.migrate_on_start:
        return None
    configured = database.connection_url
    url = configured.get_secret_value() if isinstance(configured, SecretStr) else configured
    if not url or not str(url).startswith(_ASYNC_SQLITE_PREFIX):
        return None
    location = str(url)[len(_ASYNC_SQLITE_PREFIX) :].split("?", 1)[0]
    if not location or location == ":memory:" or location.startswith("file:"):
        return None
    path = Path(location)
    return None if path.exists() else path


def _migrate(path: Path) -> None:
    """Apply Prefect's migrations, up to head, to the SQLite file ``path`` (synchronous driver)."""
    import sqlalchemy as sa
    from alembic import context
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory
    from prefect.server.database import provide_database_interface
    from prefect.server.database.alembic_commands import alembic_config

    interface = provide_database_interface()
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    script.version_locations = [str(interface.orm.versions_dir)]  # as Prefect's env.py does
    engine = sa.create_engine(f"sqlite:///{path}")

    def upgrade(revision: Any, _context: Any) -> Any:
        # what alembic.command.upgrade does, which would run Prefect's env.py (the async driver) instead
        return script._upgrade_revs("head", revision)

    try:
        with engine.connect() as connection, EnvironmentContext(config, script, fn=upgrade, destination_rev="head"):
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # as Prefect's env.py does
            # a new file nobody uses yet: no journal on disk, no sync per migration (synced once, below)
            connection.exec_driver_sql("PRAGMA journal_mode=MEMORY")
            connection.exec_driver_sql("PRAGMA synchronous=OFF")
            connection.commit()  # Alembic then runs each migration in a transaction of its own
            context.configure(
                connection=connection,
                target_metadata=interface.Base.metadata,
                include_schemas=True,
                render_as_batch=True,
                transaction_per_migration=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)  # on disk before it takes the database's place
    finally:
        os.close(descriptor)


def create_database_at_head() -> Path | None:
    """Create Prefect's SQLite database at the head revision if it does not exist; return its path.

    Returns None (and does nothing) when the database exists or is not a SQLite
    file. The migrations run on a temporary file next to it, which is then linked
    into place only if no other process created the database meanwhile.
    """
    path = new_sqlite_database()
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        _migrate(temporary)
        try:
            os.link(temporary, path)  # never replaces a database another process made meanwhile
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(temporary, path)
    finally:
        for leftover in (
            temporary,
            temporary.with_name(temporary.name + "-wal"),
            temporary.with_name(temporary.name + "-shm"),
        ):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return path
