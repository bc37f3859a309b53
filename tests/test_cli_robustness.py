"""The command line against a database it must not harm: one newer than the code, data a
rollback would drop, a session killed mid-seed, locks held by another session; and the small
ergonomics (bare groups print help, --database-url after the command, aware timestamps).

Every test drives the real `hub` (a subprocess, as a user runs it) on a real server and checks
the exit code, the one stderr line, and that nothing changed where something was refused.
"""
import contextlib
import datetime
import json
import os
import subprocess
import sys
import threading
import time

import click
import psycopg2
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from hub import connection
from hub import migrate, rls
from hub.cli.main import WRITING, cli
from hub.errors import DatabaseNewer
from hub.scenarios import scenarios_dir
from hub.seed import content_hashes, seed_database
from tests.test_migrations import ALL

AS_OF = datetime.date(2025, 1, 31)
FUTURE = '0999_from_a_newer_hub'
NEWER = ('Error: the database is newer than this code: %s is applied but this version of hub '
         'does not have it; upgrade hub' % FUTURE)


def hub(*args, key=None, input='', env=None):
    """Run `python -m hub ARGS`; returns (exit code, stdout, stderr)."""
    environ = dict(os.environ, **(env or {}))
    if key is not None:
        environ['HUB_SECRET_KEY'] = key
    proc = subprocess.run([sys.executable, '-m', 'hub', *args], env=environ, input=input,
                          capture_output=True, text=True, timeout=180)
    return proc.returncode, proc.stdout, proc.stderr


def one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


def query(url, sql, params=None):
    """Run `sql` in a connection of its own (autocommit); its rows, if it returns any."""
    with contextlib.closing(psycopg2.connect(url)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None


def state(url):
    """Everything a refused command must leave alone: rows per table (every schema), the
    migration history, the policies, RLS flags and the schemas of the database."""
    tables = [r[0] for r in query(url, """
        SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
        ORDER BY 1""")]
    return {
        'rows': {t: query(url, 'SELECT count(*) FROM %s' % t)[0][0] for t in tables},
        'history': query(url, 'SELECT name, applied FROM hub_migrations ORDER BY name')
        if 'hub_migrations' in tables else None,
        'policies': query(url, 'SELECT tablename, policyname, qual, with_check FROM pg_policies '
                               'ORDER BY 1, 2'),
        'rls': query(url, "SELECT relname, relrowsecurity FROM pg_class WHERE relkind = 'r' AND "
                          "relnamespace = 'public'::regnamespace ORDER BY 1"),
        'schemas': query(url, "SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' "
                              "ORDER BY 1"),
        'templates': query(url, 'SELECT md5(string_agg(t::text, \',\' ORDER BY id)) '
                                'FROM workflow_templates t') if 'workflow_templates' in tables
        else None,
    }


def our_leftovers(url):
    """Schemas, tables, types and functions of ours that outlive a full rollback."""
    return query(url, """
        SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname IN ('auth', 'hub_private')
        UNION ALL
        SELECT 'table ' || relname FROM pg_class WHERE relnamespace = 'public'::regnamespace
            AND relkind = 'r' AND relname <> 'hub_migrations'
        UNION ALL
        SELECT 'type ' || typname FROM pg_type WHERE typnamespace = 'public'::regnamespace
            AND typtype = 'e'
        UNION ALL
        SELECT 'policy ' || policyname FROM pg_policies""")


@pytest.fixture
def key(monkeypatch):
    value = Fernet.generate_key().decode()
    monkeypatch.setenv('HUB_SECRET_KEY', value)
    return value


@pytest.fixture
def seeded_url(db_url, key):
    """A migrated database with RLS, the marketplace and one tiny organization."""
    database = connection.bind(connection.open_database(db_url))
    try:
        seed_database(database, orgs=1, scale='tiny', as_of=AS_OF)
    finally:
        database.close()
    return db_url


# -- a database newer than the code ---------------------------------------------------------------

@pytest.fixture(scope='module')
def newer(databases, migrated_template):
    """(url, key) of a seeded, secured database whose history names a migration this code
    lacks, as a newer hub would leave it. Shared: every test here must leave it unchanged."""
    name = databases.create(template=migrated_template)
    url = databases.url(name)
    secret = Fernet.generate_key().decode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('HUB_SECRET_KEY', secret)
        database = connection.bind(connection.open_database(url))
        try:
            seed_database(database, orgs=1, scale='tiny', as_of=AS_OF)
        finally:
            database.close()
    query(url, "INSERT INTO hub_migrations (name, applied) VALUES (%s, now())", (FUTURE,))
    yield url, secret
    databases.drop(name)


def test_status_names_the_migration_the_code_lacks_and_exits_1(newer):
    url, secret = newer
    code, out, err = hub('--database-url', url, 'db', 'status', key=secret)
    assert code == 1
    assert one_line(err).startswith(NEWER[len('Error: '):])
    assert '%s  ' % FUTURE in out and '(file missing)' in out


@pytest.mark.parametrize('args', [
    ['db', 'migrate'],
    ['db', 'rollback', '-y'],
    ['db', 'rollback', '--all', '--yes'],
    ['db', 'reset', '-y'],
    ['db', 'reset', '-y', '--seed'],
    ['seed', '--orgs', '2', '--scale', 'tiny'],
    ['seed', '--reset', '-y', '--orgs', '1', '--scale', 'tiny'],
    ['templates', 'load'],
    ['import', str(scenarios_dir() / 'support-escalation.json')],
    ['import', str(scenarios_dir() / 'support-escalation.json'), '--as-new'],
    ['rls', 'install'],
    ['rls', 'uninstall'],
], ids=' '.join)
def test_every_writing_command_refuses_a_newer_database_before_writing(newer, args):
    url, secret = newer
    before = state(url)
    code, out, err = hub('--database-url', url, *args, key=secret, input='y\n')
    assert code == 1, err
    assert one_line(err).startswith(NEWER), err
    assert out == ''
    assert state(url) == before


@pytest.mark.parametrize('args', [['seed', '--orgs', '1', '--scale', 'tiny', '--as-of',
                                   '2025-01-31'],
                                  ['db', 'reset', '-y'], ['rls', 'install'],
                                  ['templates', 'load']], ids=' '.join)
def test_a_writing_command_reads_the_migration_history_for_the_check_once(db_url, secret,
                                                                           monkeypatch, args):
    """The CLI checks before any question; the library writers it calls do not check again."""
    reads, inside = [], []
    real_check, real_status = migrate.ensure_known, migrate.status

    def check(*a, **k):
        inside.append(True)
        try:
            return real_check(*a, **k)
        finally:
            inside.pop()

    def status(*a, **k):
        if inside:
            reads.append(1)
        return real_status(*a, **k)
    monkeypatch.setattr(migrate, 'ensure_known', check)
    monkeypatch.setattr(migrate, 'status', status)
    result = CliRunner().invoke(cli, ['--database-url', db_url, *args])
    assert result.exit_code == 0, result.output
    assert len(reads) == 1


def test_the_library_still_checks_outside_a_command_scope(db_url):
    """known() covers one unit of work: afterwards, and in other threads, writers check again."""
    database = connection.bind(connection.open_database(db_url))
    try:
        with migrate.known(database):
            # A newer hub migrates meanwhile: this scope checked at its start and trusts that.
            database.execute_sql("INSERT INTO hub_migrations (name, applied) VALUES (%s, now())",
                                 (FUTURE,))
            migrate.ensure_known(database)
            refused = []
            thread = threading.Thread(target=lambda: refused.append(_refused(database)))
            thread.start()
            thread.join()
            assert refused == [True]
        assert _refused(database)
    finally:
        database.close()


def _refused(database):
    try:
        migrate.ensure_known(database)
    except DatabaseNewer:
        return True
    return False


def test_the_library_refuses_a_newer_database_too(newer):
    url, secret = newer
    before = state(url)
    database = connection.bind(connection.open_database(url))
    try:
        with pytest.raises(DatabaseNewer, match='0999_from_a_newer_hub is applied'):
            migrate.ensure_known(database)
        for call in (lambda: migrate.migrate(database), lambda: migrate.rollback(database),
                     lambda: migrate.rollback(database, all=True),
                     lambda: migrate.plan_rollback(database, all=True),
                     lambda: migrate.reset(database)):
            with pytest.raises(DatabaseNewer):
                call()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv('HUB_SECRET_KEY', secret)
            with pytest.raises(DatabaseNewer):
                seed_database(database, orgs=2, scale='tiny', as_of=AS_OF, reset=True)
    finally:
        database.close()
    assert state(url) == before


def test_writing_commands_are_the_ones_that_write():
    # Every name in WRITING is a real command (or a group another branch adds: secrets).
    names = {path for path, _ in walk(cli)}
    for prefix in WRITING:
        assert prefix in names or prefix == ('secrets',), prefix


# -- destructive commands ask first ---------------------------------------------------------------

@pytest.mark.parametrize('answer', ['n\n', ''], ids=['no', 'end-of-input'])
def test_rollback_asks_on_stderr_before_dropping_rows(seeded_url, answer):
    before = state(seeded_url)
    code, out, err = hub('--database-url', seeded_url, 'db', 'rollback', '--all', input=answer)
    assert code == 1 and out == ''
    line = one_line(err)
    rows = sum(n for table, n in before['rows'].items() if table != 'hub_migrations')
    templates = before['rows']['workflow_templates']  # the largest table of a tiny seed
    assert line.startswith('reverting %s drops 12 tables holding {:,} rows ('
                           'workflow_templates {:,}, '.format(rows, templates)
                           % ', '.join(reversed(ALL)))
    assert line.endswith('; continue? [y/N]: Aborted.')
    assert state(seeded_url) == before


@pytest.mark.parametrize('flag', ['-y', '--yes'])
def test_rollback_of_everything_leaves_nothing_of_ours(seeded_url, flag):
    assert rls.installed(connection.open_database(seeded_url))
    code, out, err = hub('--database-url', seeded_url, 'db', 'rollback', '--all', flag)
    assert (code, out, err) == (0, ''.join('reverted %s\n' % n for n in reversed(ALL)), '')
    assert our_leftovers(seeded_url) == []


def test_rollback_of_empty_tables_does_not_ask(db_url):
    code, out, err = hub('--database-url', db_url, 'db', 'rollback')
    assert (code, out, err) == (0, 'reverted %s\n' % ALL[-1], '')


def walk(command, path=()):
    yield path, command
    for name, sub in getattr(command, 'commands', {}).items():
        yield from walk(sub, path + (name,))


def test_every_yes_option_has_its_short_form():
    for path, command in walk(cli):
        for param in command.params:
            if '--yes' in param.opts:
                assert '-y' in param.opts, 'hub %s: --yes without -y' % ' '.join(path)


def test_reset_asks_on_stderr_and_no_keeps_everything(seeded_url):
    before = state(seeded_url)
    code, out, err = hub('--database-url', seeded_url, 'db', 'reset', input='n\n')
    assert code == 1 and out == ''
    assert one_line(err).startswith('drop all NeuroFlow Hub data in ')
    assert state(seeded_url) == before


def test_reset_leaves_what_hub_seed_starts_from(seeded_url, db_url, databases,
                                                migrated_template, key):
    code, out, err = hub('--database-url', seeded_url, 'db', 'reset', '-y')
    assert code == 0, err
    assert out == ''.join('applied %s\n' % n for n in ALL)
    assert err.strip().splitlines()[-1] == ('the database is empty, migrated and secured; '
                                            'next: `hub seed`')
    after = state(seeded_url)
    assert after['history'][0][0] == '0001_initial'
    assert {n for table, n in after['rows'].items() if table != 'hub_migrations'} == {0}
    assert hub('--database-url', seeded_url, 'rls', 'status')[0] == 0
    # Seeding the reset database gives the bytes a seed of a fresh database gives.
    fresh = databases.url(databases.create(template=migrated_template))
    for url in (seeded_url, fresh):
        assert hub('--database-url', url, 'seed', '--orgs', '2', '--scale', 'tiny', '--quiet',
                   '--as-of', AS_OF.isoformat())[0] == 0
    hashes = []
    for url in (seeded_url, fresh):
        database = connection.open_database(url)
        try:
            hashes.append(content_hashes(database))
        finally:
            database.close()
    assert hashes[0] == hashes[1]


def test_reset_with_seed_seeds_again(seeded_url):
    code, out, err = hub('--database-url', seeded_url, 'db', 'reset', '-y', '--seed')
    assert code == 0, err
    assert out.splitlines()[-1].startswith('seeded 5 organizations (')
    assert query(seeded_url, 'SELECT count(*) FROM organizations')[0][0] == 5


def test_reset_with_seed_and_no_key_drops_nothing(seeded_url, monkeypatch, tmp_path):
    before = state(seeded_url)
    monkeypatch.delenv('HUB_SECRET_KEY')
    # Another HUB_HOME: even the embedded server's database is then "not this project's".
    code, out, err = hub('--database-url', seeded_url, 'db', 'reset', '-y', '--seed',
                         env={'HUB_HOME': str(tmp_path / 'elsewhere')})
    assert code == 2 and 'HUB_SECRET_KEY is not set' in one_line(err)
    assert state(seeded_url) == before


# -- faults: one line that says what happened -----------------------------------------------------

def _with_app(url, name):
    return url + ('&' if '?' in url else '?') + 'application_name=' + name


def _wait_for(condition, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    pytest.fail('timed out waiting for %s' % what)


def test_a_session_killed_during_seed_is_one_line(db_url, key):
    child = subprocess.Popen(
        [sys.executable, '-m', 'hub', '--database-url', _with_app(db_url, 'hub_victim'), 'seed',
         '--orgs', '3', '--scale', 'medium', '--quiet', '--as-of', AS_OF.isoformat()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: child.poll() is not None or query(db_url, """
            SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hub_victim'
            AND query ILIKE 'COPY%%' AND state = 'active'""")[0][0], 'a COPY')
        assert child.poll() is None, 'the seed ended before it was interrupted'
        query(db_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'hub_victim'")
    finally:
        out, err = child.communicate(timeout=60)
    assert child.returncode == 1 and out == ''
    line = one_line(err)
    assert line.startswith('Error: lost the connection to the database while loading ('), err
    # libpq reports what it saw first: the server's notice, or the closed socket.
    assert ('(terminating connection due to administrator command)' in line
            or '(server closed the connection unexpectedly)' in line), line


class Holder:
    """Another session: a transaction that holds locks until `release`."""

    def __init__(self, url, *statements):
        self.conn = psycopg2.connect(url)
        self.cur = self.conn.cursor()
        for sql in statements:
            self.cur.execute(sql)

    def release(self):
        self.conn.cancel()  # a statement still waiting in another thread ends now
        self.conn.rollback()
        self.conn.close()


@contextlib.contextmanager
def blocked(url, app, *args):
    """`hub ARGS` as a child (application_name `app`), once it waits for a lock; ends it and
    its session however the test goes."""
    child = subprocess.Popen([sys.executable, '-m', 'hub', '--database-url', _with_app(url, app),
                              *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: child.poll() is not None or query(url, """
            SELECT count(*) FROM pg_stat_activity WHERE application_name = %s
            AND wait_event_type = 'Lock'""", (app,))[0][0], 'hub %s to wait for a lock' % args[0])
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
        # A backend waiting for a lock does not notice its client is gone.
        query(url, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
                   'WHERE application_name = %s', (app,))


def finish(child):
    out, err = child.communicate(timeout=60)
    return child.returncode, out, err


def cancel(url, app):
    query(url, 'SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = %s',
          (app,))


def test_a_deadlock_with_another_session_is_named_and_reverts_nothing(seeded_url, timers):
    before = state(seeded_url)
    # The other session writes organizations (dropped last) and then reads integrations (dropped
    # first): the rollback, waiting first, is the one PostgreSQL aborts.
    other = Holder(seeded_url, 'LOCK TABLE organizations IN ROW EXCLUSIVE MODE')
    try:
        with blocked(seeded_url, 'hub_rollback', 'db', 'rollback', '--all', '-y') as child:
            reader = threading.Thread(target=other.cur.execute,
                                      args=('SELECT count(*) FROM integrations',))
            reader.start()
            code, out, err = finish(child)
            reader.join(timeout=60)
    finally:
        other.release()
    assert code == 1 and out == ''
    line = one_line(err)
    # Which step meets the lock first (removing RLS or the migration) is PostgreSQL's to pick.
    assert line.startswith('Error: could not '), line
    assert ('another session holds locks on the same tables (deadlock detected); nothing was '
            'changed; run it again when the other command') in line
    assert 'fix the migration' not in line
    assert state(seeded_url) == before


def test_a_lock_timeout_in_rollback_is_named(seeded_url, timers):
    before = state(seeded_url)
    name = connection._parse(seeded_url)['database']
    query(seeded_url, "ALTER DATABASE %s SET lock_timeout = '300ms'" % name)
    other = Holder(seeded_url, 'SELECT count(*) FROM workflows')
    try:
        code, out, err = hub('--database-url', seeded_url, 'db', 'rollback', '--all', '-y')
    finally:
        other.release()
    assert code == 1 and 'another session holds locks' in one_line(err)
    assert '(lock timeout: a lock was not granted within lock_timeout)' in err
    assert state(seeded_url) == before


def canceled_while_waiting(url, lock, *args):
    """Run `hub ARGS` while another session holds `lock`; cancel it once it waits (57014, as
    statement_timeout would); returns (exit code, the one stderr line)."""
    other = Holder(url, lock)
    try:
        with blocked(url, 'hub_waiting', *args) as child:
            cancel(url, 'hub_waiting')
            code, out, err = finish(child)
    finally:
        other.release()
    assert out == ''
    return code, one_line(err)


def test_a_canceled_rollback_is_named_and_reverts_nothing(seeded_url):
    before = state(seeded_url)
    code, line = canceled_while_waiting(seeded_url, 'SELECT count(*) FROM workflows',
                                        'db', 'rollback', '--all', '-y')
    assert code == 1
    assert line.startswith('Error: could not ') and 'another session holds locks' in line
    assert '(statement canceled by statement_timeout or pg_cancel_backend)' in line
    assert 'fix the migration' not in line
    assert state(seeded_url) == before


def test_a_seed_stuck_behind_a_lock_is_one_line_and_commits_nothing(seeded_url, key):
    before = state(seeded_url)
    code, line = canceled_while_waiting(
        seeded_url, 'LOCK TABLE workflow_executions IN SHARE MODE',
        'seed', '--orgs', '3', '--scale', 'tiny', '--quiet', '--as-of', AS_OF.isoformat())
    assert code == 1
    assert line.startswith('Error: another session held locks on the tables being loaded '
                           '(statement canceled'), line
    assert 'the organizations committed so far stay' in line
    assert state(seeded_url) == before


# -- smaller things -------------------------------------------------------------------------------

def test_status_json_times_carry_their_offset(db_url):
    code, out, _ = hub('--database-url', db_url, 'db', 'status', '--json')
    assert code == 0
    rows = json.loads(out)
    assert [row['name'] for row in rows] == ALL
    for row in rows:
        applied = datetime.datetime.fromisoformat(row['applied'])
        assert applied.utcoffset() is not None
        # The template database was migrated by this test session, minutes ago at most.
        now = datetime.datetime.now(datetime.timezone.utc)
        assert abs(now - applied) < datetime.timedelta(hours=1)


def test_a_write_to_a_read_only_database_says_to_use_the_primary(db_url, tmp_path):
    """A read replica refuses every write (SQLSTATE 25006); the one line says where to run it,
    while the reading commands work there (docs/scale-out.md)."""
    read_only = {'PGOPTIONS': '-c default_transaction_read_only=on'}
    code, out, err = hub('--database-url', db_url, 'seed', '--orgs', '1', '--scale', 'tiny',
                         key=Fernet.generate_key().decode(), env=read_only)
    assert code == 1 and out == ''
    line = one_line(err)
    assert line.startswith('Error: database error: cannot execute ') and line.endswith(
        "the database is read-only (a read replica, or default_transaction_read_only): run it "
        "on the primary's URL"), line
    assert query(db_url, 'SELECT count(*) FROM organizations') == [(0,)]
    for args in (['db', 'status'], ['orgs'], ['db', 'check'], ['users']):
        code, _, err = hub('--database-url', db_url, *args, env=read_only)
        assert code == 0, (args, err)


def test_docs_before_migrating_refuses_and_writes_nothing(empty_db_url, tmp_path):
    target = tmp_path / 'schema.md'
    code, out, err = hub('--database-url', empty_db_url, 'db', 'docs', '-o', str(target))
    assert code == 1 and out == ''
    assert one_line(err).startswith('Error: nothing to document: database "')
    assert 'run `hub db migrate` first' in err and not target.exists()
    code, out, err = hub('--database-url', empty_db_url, 'db', 'docs')
    assert code == 1 and out == '' and 'nothing to document' in one_line(err)


@pytest.mark.parametrize('path', [path for path, command in walk(cli)
                                  if isinstance(command, click.Group)], ids=' '.join)
def test_a_bare_group_prints_its_help_and_succeeds(path):
    code, out, err = hub(*path)
    assert (code, err) == (0, '')
    assert out.startswith('Usage: hub %s' % ' '.join(path + ('[OPTIONS]',)))
    assert 'Commands:' in out


def test_database_url_after_the_command_wins(db_url, server_url):
    missing = connection.with_database(server_url, 'hub_no_such_database')
    code, out, err = hub('db', 'status', '--database-url', db_url, env={'DATABASE_URL': missing})
    assert (code, err) == (0, '') and out.startswith('0001_initial')
    code, out, _ = hub('--database-url', missing, 'db', 'status', '--json', '--database-url',
                       db_url)
    assert code == 0 and '"0001_initial"' in out
    code, _, err = hub('db', 'migrate', '--database-url', missing)
    assert code == 1 and 'hub_no_such_database' in one_line(err)


def test_every_command_accepts_database_url():
    for path, command in walk(cli):
        assert any('--database-url' in p.opts for p in command.params), path


@pytest.mark.parametrize('ctrl_c', [True, False], ids=['ctrl-c', 'another-session'])
def test_a_canceled_copy_after_ctrl_c_is_an_interrupt_not_a_lock(database, ctrl_c):
    """psycopg2 can swallow a Ctrl-C that lands between two reads of a COPY; the server then
    answers 57014 (canceled). That is the user's interrupt, not another session's lock."""
    import signal

    from hub.errors import LockConflict
    from hub.seed import loader

    def copy():
        if ctrl_c:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            except KeyboardInterrupt:
                pass  # swallowed, as inside copy_expert
        database.execute_sql('SELECT pg_cancel_backend(pg_backend_pid())')

    # As in a terminal: a run started in the background by a script (`cmd &`, nohup) inherits
    # SIGINT ignored, where no Ctrl-C can arrive and loader._Interrupts rightly notes none.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt if ctrl_c else LockConflict):
            loader._committed(database, copy)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)
