"""full-text search index

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

SQLite: an FTS5 table (porter stemmer over unicode61 with diacritics removed), ranked
by BM25 with the subject weighted highest. PostgreSQL: a table with a ``tsvector``
column and a GIN index, in a text search configuration ``intake_english`` (english
with ``unaccent`` for words with letters outside ASCII). When the ``unaccent``
extension cannot be installed, ``intake_english`` is plain english and a warning says
so: searches then need the accents as written.

The index starts empty; ``intake search --rebuild`` fills it from the stored text.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def _unaccent_schema(conn: sa.Connection) -> str | None:
    """Where the unaccent extension is, installing it if it is missing (None: unavailable)."""
    where = sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'unaccent'"
    )
    schema: str | None = conn.scalar(where)
    if schema is not None:
        return schema
    if not conn.scalar(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent'")):
        return None
    # Installed once per database, in "public" when it can be: an extension lives in one
    # schema, and a schema dropped later (a test's, say) would take it away from the rest.
    target = conn.scalar(
        sa.text(
            "SELECT CASE WHEN to_regnamespace('public') IS NOT NULL"
            " AND has_schema_privilege('public', 'CREATE') THEN 'public'"
            " ELSE current_schema() END"
        )
    )
    try:
        with conn.begin_nested():
            conn.execute(sa.text(f'CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA "{target}"'))
    except sa.exc.DBAPIError as exc:
        log.warning("search: could not install unaccent (%s)", str(exc).splitlines()[0])
        return None
    result: str | None = conn.scalar(where)
    return result


def _upgrade_postgresql(conn: sa.Connection) -> None:
    schema = _unaccent_schema(conn)
    op.execute("CREATE TEXT SEARCH CONFIGURATION intake_english (COPY = pg_catalog.english)")
    if schema is None:
        log.warning(
            "search: the PostgreSQL extension unaccent is not available; accents must be "
            "typed as written (install postgresql-contrib, then run intake search --rebuild)"
        )
    else:
        op.execute(
            "ALTER TEXT SEARCH CONFIGURATION intake_english ALTER MAPPING FOR hword, "
            f'hword_part, word WITH "{schema}".unaccent, english_stem'
        )
    op.execute(
        """
        CREATE TABLE search_index (
            id BIGINT PRIMARY KEY,
            submission_id INTEGER NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
            part VARCHAR(500) NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            sender TEXT NOT NULL DEFAULT '',
            organisation TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL DEFAULT '',
            document TSVECTOR NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX ix_search_index_document ON search_index USING gin (document)")
    op.execute("CREATE INDEX ix_search_index_submission_id ON search_index (submission_id)")


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        _upgrade_postgresql(conn)
        return
    op.execute(
        # The rowid says which submission a row is for (submission id * 4096 + part number),
        # so finding or deleting a submission's rows never reads the stored text.
        "CREATE VIRTUAL TABLE search_index USING fts5(subject, sender, organisation, body,"
        " part UNINDEXED,"
        " tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    # A deleted submission takes its rows with it, as the foreign key does on PostgreSQL.
    op.execute(
        "CREATE TRIGGER search_index_forget AFTER DELETE ON submissions BEGIN"
        " DELETE FROM search_index WHERE rowid >= old.id * 4096 AND rowid < (old.id + 1) * 4096;"
        " END"
    )
    # The hidden rank column then ranks by BM25 with these column weights.
    op.execute(
        "INSERT INTO search_index (search_index, rank) VALUES ('rank', 'bm25(4.0, 2.0, 2.0, 1.0)')"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER search_index_forget")
    op.execute("DROP TABLE search_index")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TEXT SEARCH CONFIGURATION intake_english")
