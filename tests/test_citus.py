"""hub on a Citus cluster (a coordinator and two workers: tools/citus_cluster.sh).

Every test here runs against $HUB_CITUS_URL; without it they skip, unless HUB_REQUIRE_CITUS=1
(CI), where they may not.
"""
import contextlib

import psycopg2


def test_a_citus_database_has_the_extension_and_its_workers_on_every_node(citus_databases,
                                                                         citus_db_url):
    coordinator, workers = citus_databases.nodes()
    with contextlib.closing(psycopg2.connect(citus_db_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND isactive")
        assert cur.fetchone()[0] == len(workers) >= 2
        cur.execute("SELECT result FROM run_command_on_workers("
                    "$$SELECT extversion FROM pg_extension WHERE extname = 'citus'$$)")
        versions = {row[0] for row in cur.fetchall()}
    assert len(versions) == 1 and versions != {''}


def test_enabled_tells_a_citus_database_from_a_single_node(citus_db_url, db_url):
    from hub import citus, connection

    for url, expected in ((citus_db_url, True), (db_url, False)):
        database = connection.open_database(url)
        try:
            assert citus.enabled(database) is expected
        finally:
            database.close()
