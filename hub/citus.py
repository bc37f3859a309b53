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


def one_connection_per_worker(db):
    """Make the rest of the current transaction reach each worker over one connection
    (`SET LOCAL citus.multi_shard_modify_mode = 'sequential'`), in a transaction that reads a
    distributed table across its shards and then writes a reference table.

    A multi-shard statement may run over several connections per worker at once (a "parallel
    operation"). A reference table that distributed tables reference by foreign key (organizations,
    users, workflow_templates) must afterwards be written over the very connections that touched
    those shards, so Citus refuses the write ("cannot modify table ... because there was a
    parallel operation on a distributed table") and the transaction rolls back. Whether the read
    went parallel depends on how long its shards took (the executor adds connections as it
    waits), so without this the failure comes and goes with the load. Called only where
    `enabled(db)`: `hub seed`'s setup transaction and each of its batches (the credential key
    check reads integrations, then the marketplace or the batch writes reference tables), and
    `hub import`'s transaction (its id checks read every tenant table, then it writes
    organizations and users).
    """
    db.execute_sql("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
