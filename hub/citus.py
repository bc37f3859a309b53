"""hub on a Citus cluster: detecting the extension, and distributing the schema (docs/citus.md).

    >>> import hub.citus, hub.connection
    >>> database = hub.connection.open_database(hub.connection.resolve_url())
    >>> hub.citus.enabled(database)       # a plain PostgreSQL: no citus extension here
    False

Everything hub does differently on Citus asks `enabled(db)` first: whether the citus extension
is installed in this database (a coordinator, or a worker's copy of the database). A server
where Citus is only preloaded, but never created in the database, is a single node for hub.
"""


def enabled(db):
    """Whether the citus extension is installed in the database `db` is connected to."""
    return bool(db.execute_sql(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')"
    ).fetchone()[0])
