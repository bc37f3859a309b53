"""hub's data on a Citus cluster: seed (and --reset), the seed as SQL loaded through the
coordinator, export/import, `hub orgs`, `hub db status`, `hub rls status`, and the plans of tenant
queries. The seeded rows must equal a single node's, table by table (hub.seed.content_hashes).

Against $HUB_CITUS_URL (skipped without it, unless HUB_REQUIRE_CITUS=1, as in CI). Small on
purpose, as CI's Citus step has a few minutes: one seeded Citus database for the module (tiny
scale, 3 organizations), one single-node seed of the same options to compare with, and the
session's migrated Citus database (`citus_hub_url`) for the SQL file, loaded in a transaction
that is rolled back. Commands run as a user runs them (a subprocess, --database-url).

The seeder and the import read a distributed table across its shards (the credential key
check, the id checks) before they write reference tables, which Citus refuses when the read ran
over several connections per worker (hub.citus.one_connection_per_worker). Whether it did
depends on the load, so these commands run with `citus.force_max_query_parallelization` on:
every multi-shard statement then uses them, and a missing setting fails every time.
"""
import contextlib
import json
import os
import subprocess
import sys

import psycopg2
import pytest
from cryptography.fernet import Fernet

from hub import connection, rls
from hub.seed import content_hash_sql
from tests.test_sqlfile import content_hashes_of as hashes

SEED = ['--orgs', '3', '--scale', 'tiny', '--seed', '7', '--as-of', '2025-01-31']
#: Every multi-shard statement runs over as many connections as it has shards.
PARALLEL = '-c citus.force_max_query_parallelization=on'


@pytest.fixture(scope='module')
def key():
    """HUB_SECRET_KEY for the module's commands."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('HUB_SECRET_KEY', Fernet.generate_key().decode())
        yield


def run(command, parallel):
    env = dict(os.environ)
    if parallel:
        env['PGOPTIONS'] = PARALLEL
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def ok(url, *args, parallel=True):
    """`hub ARGS` on `url` (succeeding), by default with parallel multi-shard execution forced."""
    result = run([sys.executable, '-m', 'hub', '--database-url', url, *args], parallel)
    assert result.returncode == 0, result.stderr
    return result


def rows(url, sql, params=()):
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


@pytest.fixture(scope='module')
def single(databases, migrated_template, key):
    """The single node's seed of SEED: its content hashes and `hub orgs --json`."""
    name = databases.create(template=migrated_template)
    url = databases.url(name)
    try:
        ok(url, 'seed', *SEED, '--quiet', parallel=False)
        return {'hashes': hashes(url),
                'orgs': json.loads(ok(url, 'orgs', '--json', parallel=False).stdout)}
    finally:
        databases.drop(name)


@pytest.fixture(scope='module')
def seeded(citus_databases, key):
    """A new Citus database seeded with SEED by `hub seed`, which first migrates it (so
    distributes it: hub.citus) and installs row-level security."""
    url = citus_databases.url(citus_databases.create(prefix='hub_citus_data'))
    ok(url, 'seed', *SEED, '--quiet')
    return url


def test_seed_on_citus_holds_a_single_nodes_rows(seeded, single):
    assert rows(seeded, 'SELECT count(*) FROM pg_dist_partition')[0][0] > 0  # distributed
    assert hashes(seeded) == single['hashes']
    # `hub orgs` (counts grouped, not a sub-select per organization, which Citus refuses).
    assert json.loads(ok(seeded, 'orgs', '--json').stdout) == single['orgs']


def test_a_second_seed_adds_nothing(seeded, single):
    result = ok(seeded, 'seed', *SEED)
    assert 'nothing to add' in result.stderr
    assert hashes(seeded) == single['hashes']


def test_export_import_round_trip_on_citus(seeded, single, tmp_path):
    """An organization exported, removed and imported again (same ids) is the same document,
    and the database the same rows; a copy beside it imports too."""
    org_id, owner = rows(seeded, "SELECT organization_id, u.email FROM organization_members m "
                                 "JOIN users u ON u.id = m.user_id WHERE role = 'OWNER' "
                                 "ORDER BY organization_id LIMIT 1")[0]
    first, second = tmp_path / 'first.json', tmp_path / 'second.json'
    ok(seeded, 'export', '--org', org_id, '-o', str(first))
    users = [u['id'] for u in json.loads(first.read_text())['tables']['users']]
    with contextlib.closing(psycopg2.connect(seeded)) as conn, conn, conn.cursor() as cur:
        # The organization's rows go with it (ON DELETE CASCADE across the shards), then its users.
        cur.execute("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
        cur.execute('DELETE FROM organizations WHERE id = %s', (org_id,))
        cur.execute('DELETE FROM users WHERE id = ANY(%s)', (users,))
    # Not --as-new: the id checks read every tenant table before the reference tables are written.
    ok(seeded, 'import', str(first))
    ok(seeded, 'export', '--org', org_id, '-o', str(second))
    assert second.read_text() == first.read_text()
    assert hashes(seeded) == single['hashes']

    result = ok(seeded, 'import', str(first), '--as-new', '--link-users', '--owner', owner)
    copy = result.stdout.strip()
    assert rows(seeded, 'SELECT count(*) FROM workflows WHERE organization_id = %s', (copy,)) \
        == rows(seeded, 'SELECT count(*) FROM workflows WHERE organization_id = %s', (org_id,))


def test_reset_on_citus_empties_every_shard_and_seeds_the_same_rows(seeded, single):
    # Whatever is there (the copy of the import test, or a fourth organization) goes.
    ok(seeded, 'seed', *SEED[:1], '4', *SEED[2:], '--quiet')
    result = ok(seeded, 'seed', *SEED, '--reset', '--yes', '--json')
    assert json.loads(result.stdout)['removed']['organizations'] >= 4
    assert hashes(seeded) == single['hashes']


def test_status_commands_on_citus(seeded):
    status = ok(seeded, 'db', 'status').stdout
    assert 'pending' not in status and 'applied' in status
    ok(seeded, 'rls', 'status')  # exit 0: complete


def plan(url, sql, params=(), user=None):
    """(EXPLAIN's text, whether the Citus planner made a router plan: its DEBUG2 message), as
    the table owner or, with `user`, as that signed-in user under row-level security
    (hub.rls.as_user, which sets the identity so that it reaches the workers)."""
    database = connection.bind(connection.open_database(url))
    try:
        with database.atomic() as transaction:
            database.execute_sql('SET LOCAL client_min_messages = debug2')
            with rls.as_user(database, user) if user else contextlib.nullcontext():
                text = '\n'.join(row[0] for row in database.execute_sql('EXPLAIN ' + sql, params))
            transaction.rollback()
        return text, any('Creating router plan' in n for n in database.connection().notices)
    finally:
        database.close()


@pytest.mark.parametrize('as_tenant', [False, True], ids=['owner', 'tenant under RLS'])
def test_a_tenant_query_naming_its_organization_runs_on_one_shard(seeded, as_tenant):
    org_id, user_id = rows(seeded, "SELECT organization_id, user_id FROM organization_members "
                                   "WHERE role = 'OWNER' ORDER BY organization_id LIMIT 1")[0]
    user = user_id if as_tenant else None
    shards = rows(seeded, "SELECT count(*) FROM pg_dist_shard "
                          "WHERE logicalrelid = 'workflow_executions'::regclass")[0][0]
    latest = 'SELECT id, status FROM workflow_executions %sORDER BY started_at DESC LIMIT 50'
    text, router = plan(seeded, latest % 'WHERE organization_id = %s ', (org_id,), user)
    assert router and 'Task Count: 1\n' in text, text
    # RLS alone scoping it: every shard. (No check of the router message here: under RLS the
    # helpers' own reads of the memberships, a reference table, are router plans too.)
    text, router = plan(seeded, latest % '', (), user)
    assert 'Task Count: %d\n' % shards in text and shards > 1, text
    assert as_tenant or not router


def test_seed_sql_loads_through_the_coordinator(citus_hub_url, single, key, tmp_path):
    """psql loads the file into the session's migrated Citus database, in one transaction that
    reads the content hashes and is then rolled back (that database is shared, rows-free)."""
    path, script = tmp_path / 'seed.sql', tmp_path / 'load.sql'
    ok(citus_hub_url, 'seed', *SEED, '--sql', str(path), '--quiet')
    script.write_text('BEGIN;\n\\i %s\n%s\nROLLBACK;\n' % (path, '\n'.join(
        "SELECT '%s', (%s);" % (table, content_hash_sql(table)) for table in single['hashes'])))
    result = run(['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-f', str(script),
                  '-d', citus_hub_url], parallel=True)
    assert result.returncode == 0, result.stderr
    assert dict(line.split('|') for line in result.stdout.split()) == single['hashes']
    assert rows(citus_hub_url, 'SELECT count(*) FROM organizations') == [(0,)]
