"""Same options, same bytes: fresh databases, growing --orgs, reruns, resets and killed runs."""
import datetime
import os
import signal
import subprocess
import sys
import time

import pytest

from hub import connection
from hub import models
from hub.crypto import Credentials
from hub.errors import ConfigError
from hub.graph import GraphError
from hub.seed import content_hashes, seed_database
from hub.seed.generate import SCALES, Context, generate_org
from hub.seed.loader import load_batches
from tests.commands import ctrl_c_reaches

AS_OF = datetime.date(2025, 1, 31)


@pytest.fixture
def fresh(databases, migrated_template, secret):
    """fresh() -> a connected, migrated, empty database of this test's own."""
    opened = []

    def make(migrated=True):
        name = databases.create(template=migrated_template if migrated else None)
        database = connection.open_database(databases.url(name))
        opened.append((database, name))
        return database
    yield make
    for database, name in opened:
        database.close()
        databases.drop(name)


def seed(database, **options):
    return seed_database(database, **dict(dict(orgs=3, scale='tiny', seed=7, as_of=AS_OF),
                                          **options))


def without_org(database, org_id):
    """content_hashes of everything but organization `org_id` and its users."""
    tenant = "t.organization_id IS DISTINCT FROM '%s'" % org_id
    where = {m._meta.table_name: tenant for m in models.MODELS
             if 'organization_id' in m._meta.columns}
    where['organizations'] = "t.id <> '%s'" % org_id
    where['users'] = ("t.id NOT IN (SELECT user_id FROM organization_members "
                      "WHERE organization_id = '%s')" % org_id)
    return content_hashes(database, where)


def test_two_fresh_databases_get_identical_content(fresh):
    first, second, other = fresh(), fresh(migrated=False), fresh()
    seed(first, scale='small')
    seed(second, scale='small')  # this one is migrated by the seeder itself
    seed(other, scale='small', seed=8)
    assert content_hashes(first) == content_hashes(second)
    differ = {t for t, h in content_hashes(other).items() if h != content_hashes(first)[t]}
    assert 'organizations' in differ and 'workflow_executions' in differ


def test_one_more_org_adds_exactly_that_org(fresh):
    grown, direct = fresh(), fresh()
    seed(grown, orgs=3)
    three = content_hashes(grown)
    result = seed(grown, orgs=4)
    assert (result.added, result.kept) == (1, 3)
    seed(direct, orgs=4)
    assert content_hashes(grown) == content_hashes(direct)
    first_three = set(seed_ids(3))
    fourth = org_ids(direct) - first_three
    assert len(fourth) == 1 and first_three < org_ids(direct)
    assert without_org(direct, fourth.pop()) == three


def org_ids(database):
    return {r[0] for r in database.execute_sql('SELECT id FROM organizations').fetchall()}


def seed_ids(count):
    ctx = Context(7, SCALES['tiny'], AS_OF, [], None)
    return [ctx.org_id(i) for i in range(count)]


def test_a_slug_already_taken_is_refused_before_anything_is_written(fresh):
    database = fresh()
    seed(database, orgs=1)
    before = content_hashes(database)
    # An organization made by hand takes the slug the next seeded one would get.
    taken = Context(7, SCALES['tiny'], AS_OF, [], None).org_slug(1)
    database.execute_sql("INSERT INTO organizations (id, name, slug, updated_at) "
                         "VALUES ('by-hand', 'By hand', %s, now())", (taken,))
    with pytest.raises(ConfigError) as refused:
        seed(database, orgs=2)
    assert str(refused.value) == (
        "organization 1 of seed 7 would take the slug %r, which organization by-hand already "
        "has; seed an empty database (hub seed --reset) or choose another --seed" % taken)
    database.execute_sql("DELETE FROM organizations WHERE id = 'by-hand'")
    assert content_hashes(database) == before
    assert seed(database, orgs=2).added == 1


def test_rerun_adds_nothing_and_changes_nothing(fresh):
    database = fresh()
    seed(database)
    before = content_hashes(database)
    again = seed(database)
    assert (again.added, again.kept, again.total_rows) == (0, 3, 0)
    assert content_hashes(database) == before


def test_reset_removes_everything_then_seeds_the_same(fresh):
    database = fresh()
    seed(database)
    before = content_hashes(database)
    seed(database, seed=99, orgs=2)  # other data the reset must remove
    result = seed(database, reset=True)
    assert result.removed == {'organizations': 5, 'users': result.removed['users']}
    assert result.added == 3
    assert content_hashes(database) == before


def test_generator_process_and_thread_load_the_same_rows(fresh, secret):
    ctx = Context(5, SCALES['small'], AS_OF, [], Credentials(secret.encode()))
    loaded = []
    for use_process in (True, False):
        database = fresh()
        batches = ([generate_org(ctx, i), generate_org(ctx, i + 1)] for i in (0, 2))
        done = list(load_batches(database, batches, use_process=use_process))
        assert [orgs for orgs, _ in done] == [2, 2]
        assert sum(done[0][1].values()) == sum(
            database.execute_sql('SELECT count(*) FROM %s' % table).fetchone()[0]
            for table in done[0][1]) - sum(done[1][1].values())
        loaded.append(content_hashes(database))
    assert loaded[0] == loaded[1]


@pytest.mark.parametrize('use_process', [True, False], ids=['process', 'thread'])
def test_a_generator_failure_reaches_the_caller_and_commits_nothing_more(fresh, secret,
                                                                       use_process):
    ctx = Context(5, SCALES['tiny'], AS_OF, [], Credentials(secret.encode()))
    database = fresh()

    def batches():
        yield [generate_org(ctx, 0)]
        yield [generate_org(ctx, 1)]
        raise GraphError('seeded workflow: broken on purpose')

    seen = []
    with pytest.raises(GraphError, match='broken on purpose'):
        for orgs, _ in load_batches(database, batches(), use_process=use_process):
            seen.append(orgs)
    assert seen == [1, 1]
    assert database.execute_sql('SELECT count(*) FROM organizations').fetchone()[0] == 2


def _stop(how, child, victim):
    if how == 'kill':
        child.send_signal(signal.SIGKILL)
    elif how == 'ctrl-c':
        child.send_signal(signal.SIGINT)
    else:  # the connection is lost: the server ends the session under the seeder
        victim.execute_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE application_name = 'hub_killed'")


@pytest.mark.parametrize('how', ['kill', 'ctrl-c', 'lost-connection'])
def test_interrupted_run_leaves_whole_organizations_and_a_rerun_completes_it(fresh, databases,
                                                                             how):
    reference, victim = fresh(), fresh()
    options = dict(orgs=3, scale='medium', seed=11, as_of=AS_OF)
    seed_database(reference, **options)
    victim_url = databases.url(victim.database)
    victim_url += ('&' if '?' in victim_url else '?') + 'application_name=hub_killed'
    # The real command, with its defaults: the first batch is one organization, the next
    # two go in one transaction, which is the one interrupted.
    child = subprocess.Popen([sys.executable, '-m', 'hub', '--database-url', victim_url, 'seed',
                              '--orgs', '3', '--scale', 'medium', '--seed', '11',
                              '--as-of', '2025-01-31', '--quiet'], env=dict(os.environ),
                             preexec_fn=ctrl_c_reaches,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            committed = victim.execute_sql('SELECT count(*) FROM organizations').fetchone()[0]
            busy = victim.execute_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hub_killed' "
                "AND xact_start IS NOT NULL AND query ILIKE 'COPY%%'").fetchone()[0]
            if committed >= 1 and busy:
                break
            assert child.poll() is None, 'the seeding process ended before it was stopped'
            time.sleep(0.01)
        else:
            pytest.fail('the seeding process never reached its second organization')
        _stop(how, child, victim)
    finally:
        _, errors = child.communicate(timeout=60)
    if how == 'kill':
        assert child.returncode == -signal.SIGKILL
    else:
        # Ctrl-C: 130 (128 + SIGINT) and one line saying what stays and what rolled back.
        assert child.returncode == (130 if how == 'ctrl-c' else 1), errors
        assert 'Traceback' not in errors and len(errors.strip().splitlines()) == 1, errors
        expected = ('interrupted: 1 organization committed stays, the batch in progress was '
                    'rolled back' if how == 'ctrl-c'
                    else 'lost the connection to the database while loading')
        assert expected in errors, errors
    # The server notices the lost connection and rolls its transaction back.
    for _ in range(500):
        if not victim.execute_sql("SELECT count(*) FROM pg_stat_activity "
                                  "WHERE application_name = 'hub_killed'").fetchone()[0]:
            break
        time.sleep(0.01)
    present = victim.execute_sql('SELECT count(*) FROM organizations').fetchone()[0]
    assert 1 <= present < 3
    per_org = '''SELECT o.id, (SELECT count(*) FROM workflow_executions e
                              WHERE e.organization_id = o.id),
                             (SELECT count(*) FROM agent_executions e
                              WHERE e.organization_id = o.id),
                             (SELECT count(*) FROM organization_members m
                              WHERE m.organization_id = o.id)
                 FROM organizations o ORDER BY o.id'''
    expected = {r[0]: r for r in reference.execute_sql(per_org).fetchall()}
    for row in victim.execute_sql(per_org).fetchall():
        assert row == expected[row[0]]  # whole organizations only
    orphans = victim.execute_sql('SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM '
                                 'organization_members m WHERE m.user_id = u.id)').fetchone()[0]
    assert orphans == 0
    rerun = seed_database(victim, **options)
    assert (rerun.added, rerun.kept) == (3 - present, present)
    assert content_hashes(victim) == content_hashes(reference)
