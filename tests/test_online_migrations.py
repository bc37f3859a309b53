"""Migrations on a database that is serving traffic: bounded lock waits, retries, the blocker
named; emitted SQL files start with the same bounds (docs/migrations.md, "Bounded waits")."""
import contextlib
import subprocess
import sys
import threading
import time

import psycopg2
import pytest

from hub import migrate
from tests.project import Project

ADD_COLUMN = 'ALTER TABLE public.workflows ADD COLUMN priority integer NOT NULL DEFAULT 0;\n'
DROP_COLUMN = 'ALTER TABLE public.workflows DROP COLUMN priority;\n'
#: What the blocking session last ran; it stays "idle in transaction" holding ACCESS SHARE.
BLOCKER_QUERY = 'SELECT count(*) FROM public.workflows'

# Bounded waits are the server's lock_timeout: its timers do not fire under faketime.
pytestmark = pytest.mark.usefixtures('timers')


@pytest.fixture
def plain(tmp_path):
    """A copy of the project."""
    return Project(tmp_path)


@pytest.fixture
def project(plain):
    """A copy of the project with a migration that adds a column to `workflows`."""
    migrate.new('add_priority', plain.migrations,
                migrate.render('add_priority', up_sql=ADD_COLUMN, down_sql=DROP_COLUMN))
    return plain


@contextlib.contextmanager
def blocker(url):
    """A session with an open transaction that read `workflows`: it holds ACCESS SHARE on it
    until the block ends (commit), so ADD COLUMN's ACCESS EXCLUSIVE must wait."""
    conn = psycopg2.connect(url, application_name='report-export')
    try:
        with conn.cursor() as cur:
            pid = conn.get_backend_pid()
            cur.execute(BLOCKER_QUERY)
            yield pid
        conn.commit()
    finally:
        conn.close()


class Reader(threading.Thread):
    """A third session reading `workflows` again and again, each read its own transaction; it
    keeps the longest a read took."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.longest, self.reads = url, 0.0, 0
        self.done = threading.Event()

    def run(self):
        conn = psycopg2.connect(self.url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                while not self.done.is_set():
                    start = time.monotonic()
                    cur.execute('SELECT count(*) FROM public.workflows')
                    self.longest = max(self.longest, time.monotonic() - start)
                    self.reads += 1
                    time.sleep(0.02)
        finally:
            conn.close()


def start_migrate(project, url, *args):
    import os

    env = dict(os.environ, DATABASE_URL=url, PYTHONPATH=str(project.root))
    return subprocess.Popen([sys.executable, '-m', 'hub', 'db', 'migrate', *args],
                            cwd=project.root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def has_priority(url):
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = "
                    "'workflows' AND column_name = 'priority'")
        return cur.fetchone()[0] == 1


LOCK_TIMEOUT = 1.0
#: Generous: two cores shared with other test runs; the unbounded wait this replaces lasted as
#: long as the blocking transaction (HOLD seconds here).
MARGIN = 1.5
HOLD = 5.0


def test_readers_wait_no_longer_than_the_lock_timeout_and_migrate_retries_until_released(
        project, db_url):
    with blocker(db_url):
        proc = start_migrate(project, db_url, '--lock-timeout', '%gs' % LOCK_TIMEOUT,
                             '--retries', '30')
        reader = Reader(db_url)
        reader.start()
        try:
            time.sleep(HOLD)
        finally:
            reader.done.set()
            reader.join()
        assert proc.poll() is None  # still retrying while the lock is held
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert 'applied %s' % project.new_files()[0].stem in out
    assert 'lock_timeout (1s) reached, held by pid' in err and 'retry 2 of 30' in err, err
    assert reader.reads > 5
    assert reader.longest < LOCK_TIMEOUT + MARGIN, reader.longest
    assert has_priority(db_url)


def test_migrate_fails_naming_the_blocker_after_its_retries(project, db_url):
    with blocker(db_url) as pid:
        proc = start_migrate(project, db_url, '--lock-timeout', '300ms', '--retries', '2')
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    lines = err.splitlines()
    assert lines[-1].startswith('Error: could not apply %s: waited 300ms for a lock 3 times '
                                % project.new_files()[0].stem), err
    last = lines[-1]
    for part in ('pid %d (role postgres, application report-export, transaction since ' % pid,
                 ' UTC, open ', 'idle in transaction', 'query: %s' % BLOCKER_QUERY,
                 'nothing of it was applied'):
        assert part in last, (part, last)
    assert 'Traceback' not in err
    assert not has_priority(db_url)
    assert out == ''


@pytest.mark.parametrize('option, value', [('--lock-timeout', 'soon'),
                                           ('--statement-timeout', '5 parsecs'),
                                           ('--retries', '-1')])
def test_a_bad_bound_is_one_line_and_exit_2(project, db_url, option, value):
    result = project.hub(db_url, 'db', 'migrate', option, value)
    assert result.returncode == 2
    assert result.stderr.count('\n') == 1 and value in result.stderr, result.stderr
    assert not has_priority(db_url)


def test_a_bad_bound_from_the_environment_names_the_variable(project, db_url):
    result = project.hub(db_url, 'db', 'migrate', env={'HUB_MIGRATE_LOCK_TIMEOUT': 'forever'})
    assert result.returncode == 2
    assert result.stderr == ("Error: HUB_MIGRATE_LOCK_TIMEOUT 'forever' is not a duration; give "
                             "a number with a unit, e.g. 2s, 500ms or 10min (0 for no limit)\n")


def test_emitted_files_start_with_the_same_bounds(project, db_url, tmp_path):
    result = project.hub(db_url, 'db', 'migrate', '--sql', '--lock-timeout', '3s',
                         '--statement-timeout', '1min')
    assert result.returncode == 0, result.stderr
    first = [line for line in result.stdout.splitlines() if line and not line.startswith('--')]
    assert first[:2] == ["SET lock_timeout = '3000ms';", "SET statement_timeout = '60000ms';"]
    result = project.hub(db_url, 'db', 'sql', env={'HUB_MIGRATE_LOCK_TIMEOUT': '4s'})
    assert result.returncode == 0, result.stderr
    first = [line for line in result.stdout.splitlines() if line and not line.startswith('--')]
    assert first[1:3] == ["SET lock_timeout = '4000ms';", "SET statement_timeout = '600000ms';"]


# -- index changes on existing tables: CONCURRENTLY, outside the transaction ------------------

WORKFLOW_INDEXES = "        indexes = ((('organization', 'id'), True), (('created_at',), False))"
UNIQUE_NAME = ("        indexes = ((('organization', 'id'), True), (('created_at',), False),\n"
               "                   (('organization', 'name'), True))")
INDEX = 'public.workflows_organization_id_name'


def index_state(url, index=INDEX):
    """None when absent, else whether it is valid."""
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute('SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)', (index,))
        row = cur.fetchone()
        cur.execute('SELECT count(*) FROM pg_index WHERE NOT indisvalid')
        assert cur.fetchone()[0] == (1 if row and not row[0] else 0)
        return None if row is None else row[0]


def sql(url, statement):
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute(statement)
        conn.commit()


@pytest.fixture
def seeded(plain, empty_db_url, secret):
    result = plain.hub(empty_db_url, 'seed', '--orgs', '1', '--scale', 'tiny', '--as-of',
                         '2025-01-31', '-q')
    assert result.returncode == 0, result.stderr
    return empty_db_url


def test_generate_builds_an_index_on_an_existing_table_concurrently_and_a_failure_leaves_none_invalid(
        plain, seeded):
    url, project = seeded, plain
    # two workflows of one organization with the same name: the unique index cannot be built
    sql(url, "UPDATE workflows SET name = 'Same' WHERE id IN (SELECT id FROM workflows "
             "WHERE organization_id = (SELECT min(organization_id) FROM workflows) "
             "ORDER BY id LIMIT 2)")
    project.edit('hub/models.py', WORKFLOW_INDEXES, UNIQUE_NAME)
    result = project.hub(url, 'db', 'generate', 'unique_workflow_names')
    assert result.returncode == 0, result.stderr
    [path] = project.new_files()
    source = path.read_text()
    section = source.split('CONCURRENTLY = r"""')[1].split('"""')[0]
    assert section.strip() == ('CREATE UNIQUE INDEX CONCURRENTLY workflows_organization_id_name '
                               'ON public.workflows (organization_id, name);')
    assert 'INDEX' not in source.split('UP = r"""')[1].split('"""')[0]  # not in the transaction
    result = project.hub(url, 'db', 'migrate')
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        'Error: migration %s is applied, but its CONCURRENTLY statement on %s failed: could not '
        'create unique index "workflows_organization_id_name"; no invalid index was left behind; '
        'fix the cause (for a unique index: the duplicate rows) and run `hub db migrate` again, '
        'which finishes it first' % (path.stem, INDEX)), result.stderr
    assert index_state(url) is None  # the build's INVALID leftover was dropped
    # a leftover of an interrupted build (as a killed `hub db migrate` leaves it) is replaced
    sql(url, "UPDATE workflows SET name = name || ' ' || id WHERE name = 'Same'")
    sql(url, 'CREATE INDEX workflows_organization_id_name ON public.workflows (name)')
    sql(url, "UPDATE pg_index SET indisvalid = false WHERE indexrelid = "
             "'%s'::regclass" % INDEX)
    assert index_state(url) is False
    result = project.hub(url, 'db', 'migrate')
    assert result.returncode == 0, result.stderr
    assert 'CREATE UNIQUE INDEX CONCURRENTLY workflows_organization_id_name' in result.stderr
    assert index_state(url) is True
    result = project.hub(url, 'db', 'check')
    assert result.returncode == 0, result.stdout + result.stderr
    # done: the next run has nothing to finish
    result = project.hub(url, 'db', 'migrate')
    assert result.returncode == 0 and 'CONCURRENTLY' not in result.stderr, result.stderr


def test_a_build_waiting_for_an_open_transaction_blocks_no_writer_and_a_cancel_leaves_nothing(
        plain, db_url):
    project = plain
    migrate.new('index_name', project.migrations, migrate.render(
        'index_name', up_sql='', down_sql='DROP INDEX public.workflows_name;\n',
        concurrently='CREATE INDEX CONCURRENTLY workflows_name ON public.workflows (name);\n'))
    stem = project.new_files()[-1].stem
    # `hub db migrate` commits the migration, then builds the index, which waits for the
    # transaction below (CONCURRENTLY waits for transactions that may write the table)
    old = psycopg2.connect(db_url)
    writer = psycopg2.connect(db_url)
    writer.autocommit = True
    try:
        with old.cursor() as cur, writer.cursor() as wcur:
            # a writer's open transaction: the build waits for it to end
            cur.execute('UPDATE workflows SET description = description WHERE false')
            proc = start_migrate(project, db_url)
            deadline = time.monotonic() + 60
            building = None
            while building is None and time.monotonic() < deadline:
                wcur.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX "
                             "CONCURRENTLY workflows_name%' AND wait_event_type = 'Lock'")
                building = (wcur.fetchone() or [None])[0]
                time.sleep(0.1)
            assert building, ('the build never started', proc.poll(),
                              proc.communicate(timeout=60) if proc.poll() is not None else '')
            # writers go on while it builds: a plain CREATE INDEX's SHARE lock would make this
            # UPDATE wait, and fail on its lock_timeout
            wcur.execute("SET lock_timeout = '1s'")
            wcur.execute("UPDATE workflows SET description = 'x' WHERE false")
            wcur.execute('SELECT count(*) FROM workflows')
            wcur.execute('SELECT pg_cancel_backend(%s)', (building,))
            # dropping the INVALID leftover CONCURRENTLY waits for the same transaction
            old.commit()
        out, err = proc.communicate(timeout=60)
    finally:
        old.close()
        writer.close()
    assert proc.returncode == 1
    assert ('migration %s is applied, but its CONCURRENTLY statement on public.workflows_name '
            'failed: canceling statement due to user request' % stem) in err, err
    assert index_state(db_url, 'public.workflows_name') is None
    result = project.hub(db_url, 'db', 'migrate')
    assert result.returncode == 0, result.stderr
    assert index_state(db_url, 'public.workflows_name') is True


def indexes(url, tables=('workflow_executions', 'agent_executions', 'team_executions')):
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute('SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) '
                    'ORDER BY 1', (list(tables),))
        return cur.fetchall()


def test_0006_is_applied_online_to_the_same_end_state(plain, empty_db_url, db_url):
    from hub import connection
    from tests.rows import make_tenant

    assert plain.hub(empty_db_url, 'db', 'migrate', '0005').returncode == 0
    database = connection.bind(connection.open_database(empty_db_url))
    try:
        make_tenant(database, 'acme')  # executions: the online path is for tables with rows
    finally:
        database.close()
    before = indexes(empty_db_url)
    result = plain.hub(empty_db_url, 'db', 'migrate')
    assert result.returncode == 0, result.stderr
    # the new indexes were built CONCURRENTLY under temporary names before the transaction
    assert ('0006_started_at_indexes: CREATE INDEX CONCURRENTLY IF NOT EXISTS '
            'workflow_executions_started_at_brin ON public.workflow_executions USING brin '
            '(started_at)') in result.stderr
    after = indexes(empty_db_url)
    assert after != before
    # reset applies every file's own SQL in one transaction: 0006 as written
    database = connection.open_database(db_url)
    try:
        assert '0006_started_at_indexes' in migrate.reset(database)
    finally:
        database.close()
    assert after == indexes(db_url)
    assert plain.hub(empty_db_url, 'db', 'check').returncode == 0
    assert plain.hub(empty_db_url, 'db', 'status').returncode == 0  # 0006's checksum as shipped


# -- backfills in batches, after the DDL's transaction -----------------------------------------

def test_a_backfill_runs_in_batches_after_up_commits_and_resumes(plain, seeded):
    url, project = seeded, plain
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute('SELECT count(*) FROM workflows')
        rows = cur.fetchone()[0]
    assert rows >= 4
    path = migrate.new('workflow_rank', project.migrations, migrate.render(
        'workflow_rank', up_sql='ALTER TABLE public.workflows ADD COLUMN rank integer;\n',
        down_sql='ALTER TABLE public.workflows DROP COLUMN rank;\n'))
    path.write_text(path.read_text() + "\n\nBACKFILL = [('public.workflows', 'rank = length(name)', "
                    "'rank IS NULL', 3)]\n")
    result = project.hub(url, 'db', 'migrate')
    assert result.returncode == 0, result.stderr
    batches = -(-rows // 3)
    assert ('public.workflows: %d rows updated in %d batches of at most 3' % (rows, batches)
            in result.stderr), result.stderr
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute('SELECT count(*) FROM workflows WHERE rank IS DISTINCT FROM length(name)')
        assert cur.fetchone()[0] == 0
        # rows written meanwhile (an old client) are taken by the next run: it resumes
        cur.execute('UPDATE workflows SET rank = NULL WHERE id IN (SELECT id FROM workflows '
                    'LIMIT 2)')
        conn.commit()
    result = project.hub(url, 'db', 'migrate')
    assert result.returncode == 0, result.stderr
    assert 'public.workflows: 2 rows updated in 1 batch of at most 3' in result.stderr


def test_migrate_sql_gives_each_concurrently_statement_a_file_of_its_own(plain, db_url, tmp_path):
    migrate.new('index_name', plain.migrations, migrate.render(
        'index_name', up_sql='', down_sql='DROP INDEX public.workflows_name;\n',
        concurrently='CREATE INDEX CONCURRENTLY workflows_name ON public.workflows (name);\n'))
    out = tmp_path / 'files'
    result = plain.hub(db_url, 'db', 'migrate', '--sql', '-o', str(out))
    assert result.returncode == 0, result.stderr
    files = sorted(out.glob('*.sql'))
    stem = plain.new_files()[0].stem
    assert [f.name.split('_', 1)[1] for f in files] == [
        'hub_%s.sql' % stem, 'hub_%s_concurrently_1.sql' % stem]
    for path in files:
        assert path.read_text().startswith("SET lock_timeout = '2000ms';\n"
                                           "SET statement_timeout = '600000ms';\n")
    statements = [line for line in files[1].read_text().splitlines()
                  if line and not line.startswith(('--', 'SET '))]
    assert statements == ['CREATE INDEX CONCURRENTLY workflows_name ON public.workflows (name);']
    result = plain.hub(db_url, 'db', 'migrate', '--sql')  # one file cannot hold it
    assert result.returncode == 2
    assert 'builds or drops indexes CONCURRENTLY, outside any transaction' in result.stderr
