"""Alembic environment of plugin migrations (routerd.db.migrate runs it with a live connection).

Each plugin's revisions (its ``MIGRATIONS`` folder) are a history of their own, recorded in a version table of
their own (``alembic_version_<plugin>``), so a plugin switched off or removed leaves the kernel's schema and the
other plugins' untouched."""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    version_table=config.attributes["version_table"],
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
