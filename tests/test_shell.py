"""`hub shell`: scripts with Python's semantics, the prompt, and --as USER on a real database.

Every test runs the real command (a subprocess of `python -m hub shell`) against its own migrated
database; the --as tests install row-level security and make two tenants, acme and globex.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from hub import connection
from hub import rls
from tests.rows import make_tenant


def hub_shell(url, stdin, *args):
    env = dict(os.environ, DATABASE_URL=url)
    return subprocess.run([sys.executable, '-m', 'hub', 'shell', *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=120)


def script(text, **ids):
    return textwrap.dedent(text).lstrip() % ids


@pytest.fixture
def tenants(database):
    rls.install(database)
    return {'acme': make_tenant(database, 'acme'), 'globex': make_tenant(database, 'globex')}


def count(database, table):
    return database.execute_sql('SELECT count(*) FROM %s' % table).fetchone()[0]


def banner(result):
    [line] = [line for line in result.stderr.splitlines() if line.startswith('hub shell:')][:1]
    return line


# -- scripts ------------------------------------------------------------------------------------

def test_piped_input_runs_as_one_module_without_prompts(database, db_url):
    make_tenant(database, 'acme')
    make_tenant(database, 'globex')
    result = hub_shell(db_url, script('''
        def total():
            n = Workflow.select().count()

            return n


        print(total())
        print(db.is_closed())
        '''))
    assert result.returncode == 0, result.stderr
    assert result.stdout == '2\nFalse\n'  # no '>>>' or '...' anywhere
    assert connection.where(db_url) in banner(result)


def test_an_uncaught_exception_prints_the_users_traceback_and_exits_1(db_url):
    result = hub_shell(db_url, script('''
        print('before')

        def fail():
            raise ValueError('boom')

        fail()
        print('never')
        '''))
    assert result.returncode == 1
    assert result.stdout == 'before\n'
    err = result.stderr
    assert 'Traceback (most recent call last):' in err
    assert 'File "<stdin>", line 6, in <module>' in err
    assert 'File "<stdin>", line 4, in fail' in err
    assert err.rstrip().endswith('ValueError: boom')
    # The user's frames only: nothing of the shell's own machinery.
    assert 'console.py' not in err and 'shell.py' not in err and 'code.py' not in err


def test_a_syntax_error_is_reported_like_python_and_nothing_runs(db_url):
    result = hub_shell(db_url, 'print("ran")\nif True:\nprint(1)\n')
    assert result.returncode == 1
    assert result.stdout == ''
    assert 'File "<stdin>", line 3' in result.stderr
    assert 'IndentationError' in result.stderr


@pytest.mark.parametrize('code, status, message', [
    ('import sys; sys.exit(3)', 3, None),
    ('raise SystemExit', 0, None),
    ('raise SystemExit("bye")', 1, 'bye'),
    ('exit(0)', 0, None),
])
def test_system_exit_sets_the_exit_code(db_url, code, status, message):
    result = hub_shell(db_url, code + '\nprint("after")\n')
    assert result.returncode == status, result.stderr
    assert result.stdout == ''
    assert 'Traceback' not in result.stderr
    if message:
        assert result.stderr.rstrip().endswith(message)


def test_dash_c_runs_the_code_and_passes_arguments(database, db_url):
    make_tenant(database, 'acme')
    result = hub_shell(db_url, '', '-c', 'import sys\nprint(Organization.select().count(), sys.argv)',
                       'a', '--b')
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1 ['-c', 'a', '--b']\n"
    failed = hub_shell(db_url, '', '-c', '1/0')
    assert failed.returncode == 1
    assert 'File "<string>", line 1, in <module>' in failed.stderr
    assert failed.stderr.rstrip().endswith('ZeroDivisionError: division by zero')


def test_a_script_file_runs_with_its_name_and_arguments(db_url, tmp_path):
    path = tmp_path / 'report.py'
    path.write_text(script('''
        import sys
        print(__name__, sys.argv[1:], Workflow.select().count())

        raise KeyError('missing')
        '''))
    result = hub_shell(db_url, '', str(path), 'x', '-v')
    assert result.returncode == 1
    assert result.stdout == "__main__ ['x', '-v'] 0\n"
    assert 'File "%s", line 4, in <module>' % path in result.stderr
    dash = hub_shell(db_url, 'print("from stdin")\n', '-')
    assert (dash.returncode, dash.stdout) == (0, 'from stdin\n')


def test_a_missing_script_file_is_one_line_and_exit_2(db_url, tmp_path):
    result = hub_shell(db_url, '', str(tmp_path / 'nope.py'))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert 'nope.py' in result.stderr


def test_the_interactive_prompt_goes_on_after_an_error(db_url):
    result = hub_shell(db_url, 'x = 41\n1/0\nprint(x + 1)\n', '-i')
    assert result.returncode == 0, result.stderr
    assert '42' in result.stdout.split()
    assert 'ZeroDivisionError' in result.stderr
    assert '>>>' in result.stderr  # the prompts of code.interact go to stderr, as python -i


# -- --as USER ----------------------------------------------------------------------------------

def test_as_an_unknown_user_is_one_line(db_url):
    result = hub_shell(db_url, '', '--as', 'nobody')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "'nobody'" in result.stderr


def test_commit_without_as_is_a_usage_error(db_url):
    result = hub_shell(db_url, 'print(1)\n', '--commit')
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert '--as' in result.stderr


def test_as_a_user_sees_what_the_tenant_sees(database, db_url, tenants):
    acme = tenants['acme']
    code = ('print(Workflow.select().count(), Organization.select().count())\n'
            'print(sorted({w.organization_id for w in Workflow.select()}))\n')
    result = hub_shell(db_url, code, '--as', acme['user'])
    assert result.returncode == 0, result.stderr
    assert result.stdout == '1 1\n%r\n' % [acme['org']]
    assert 'as user %s' % acme['user'] in banner(result)
    everything = hub_shell(db_url, code)  # without --as: the owner sees both tenants
    assert everything.stdout.startswith('2 2\n')


DENIED_INSERT = '''
    from peewee import DatabaseError
    try:
        Workflow.create(name='planted', nodes=[], edges=[], organization=%(other)r,
                        creator=%(user)r)
    except DatabaseError as exc:
        print('denied', getattr(exc.orig, 'pgcode', None))
    print(Workflow.select().count())
    '''


def test_a_denied_statement_raises_and_the_next_one_works(database, db_url, tenants):
    acme, globex = tenants['acme'], tenants['globex']
    result = hub_shell(db_url, script(DENIED_INSERT, other=globex['org'], user=acme['user']),
                       '--as', acme['user'], '--commit')
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'denied 42501\n1\n'
    assert count(database, 'workflows') == 2


def test_a_denied_input_at_the_prompt_does_not_end_the_session(database, db_url, tenants):
    acme, globex = tenants['acme'], tenants['globex']
    lines = ("Workflow.create(name='planted', nodes=[], edges=[], organization=%r, creator=%r)\n"
             "print('seen', Workflow.select().count())\n" % (globex['org'], acme['user']))
    result = hub_shell(db_url, lines, '-i', '--as', acme['user'], '--commit')
    assert result.returncode == 0, result.stderr
    assert 'row-level security' in result.stderr
    assert 'seen 1' in result.stdout
    assert 'current transaction is aborted' not in result.stderr
    assert count(database, 'workflows') == 2


def test_the_identity_survives_commit_rollback_and_transactions(database, db_url, tenants):
    acme = tenants['acme']
    result = hub_shell(db_url, script('''
        def seen():
            return sorted({w.organization_id for w in Workflow.select()})

        db.commit()
        print(seen())
        db.rollback()
        print(seen())
        with db.atomic():
            print(seen())
        print(seen())
        db.connection().commit()
        db.execute_sql('COMMIT')
        print(seen())
        db.close()
        db.connect()
        print(seen())
        from psycopg2.extras import RealDictCursor
        with db.connection().cursor(cursor_factory=RealDictCursor) as cursor:
            cursor.execute('SELECT DISTINCT organization_id FROM workflows')
            print([row['organization_id'] for row in cursor.fetchall()])
        print(db.execute_sql('SELECT current_user').fetchone()[0])
        '''), '--as', acme['user'])
    assert result.returncode == 0, result.stderr
    assert result.stdout == ('%r\n' % [acme['org']]) * 7 + 'authenticated\n'


def test_sql_that_ends_the_transaction_itself_is_refused_loudly(database, db_url, tenants):
    acme = tenants['acme']
    result = hub_shell(db_url, script('''
        try:
            db.execute_sql('COMMIT; SELECT 1')
        except Exception as exc:
            print(type(exc).__name__)
        print(Workflow.select().count())
        '''), '--as', acme['user'])
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'ShellError\n1\n'


CREATE = '''
    from psycopg2 import sql
    Workflow.create(name='kept?', nodes=[], edges=[], organization=%(org)r, creator=%(user)r)
    db.commit()
    db.cursor().execute(sql.SQL('COMMIT'))
    print(Workflow.select().count())
    '''


def test_writes_under_as_are_rolled_back_by_default(database, db_url, tenants):
    acme = tenants['acme']
    result = hub_shell(db_url, script(CREATE, org=acme['org'], user=acme['user']),
                       '--as', acme['user'])
    assert result.returncode == 0, result.stderr
    assert result.stdout == '2\n'  # the session saw its own write...
    assert 'rolled back' in banner(result)
    assert 'rolled back' in result.stderr.splitlines()[-1]
    assert count(database, 'workflows') == 2  # ...and nothing reached the database


def test_writes_under_as_are_kept_with_commit(database, db_url, tenants):
    acme = tenants['acme']
    result = hub_shell(db_url, script(CREATE, org=acme['org'], user=acme['user']),
                       '--as', acme['user'], '--commit')
    assert result.returncode == 0, result.stderr
    assert 'committed' in banner(result)
    assert 'committed' in result.stderr.splitlines()[-1]
    assert count(database, 'workflows') == 3
    assert database.execute_sql("SELECT organization_id, created_by FROM workflows "
                                "WHERE name = 'kept?'").fetchall() == [(acme['org'], acme['user'])]


def test_a_script_that_fails_under_as_commits_nothing(database, db_url, tenants):
    acme = tenants['acme']
    failing = script(CREATE, org=acme['org'], user=acme['user']) + 'raise RuntimeError("late")\n'
    result = hub_shell(db_url, failing, '--as', acme['user'], '--commit')
    assert result.returncode == 1
    assert 'RuntimeError: late' in result.stderr
    assert count(database, 'workflows') == 2
    exited = hub_shell(db_url, script(CREATE, org=acme['org'], user=acme['user']) + 'exit(4)\n',
                       '--as', acme['user'], '--commit')
    assert exited.returncode == 4
    assert count(database, 'workflows') == 2


# -- rls mode active: --org, and who to be ------------------------------------------------------

def test_as_in_mode_active_acts_in_one_organization_and_the_banner_says_which(database, db_url,
                                                                              tenants):
    # Before: after `hub rls install --mode active`, --as saw 1 organization and 0 workflows,
    # with nothing in the banner to say why, and no --org.
    acme, globex = tenants['acme'], tenants['globex']
    rls.install(database, mode='active')
    # The acme owner is invited into globex too: two organizations, one per session.
    database.execute_sql("INSERT INTO organization_members (id, organization_id, user_id, role, "
                         "accepted_at) VALUES ('m-two', %s, %s, 'MEMBER', now())",
                         (globex['org'], acme['user']))
    code = 'print(Workflow.select().count(), sorted({w.organization_id for w in Workflow.select()}))\n'
    refused = hub_shell(db_url, code, '--as', acme['user'])
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert 'rls mode is active' in refused.stderr and 'acme, globex' in refused.stderr
    for org, slug in ((acme['org'], 'acme'), (globex['org'], 'globex')):
        result = hub_shell(db_url, code, '--as', acme['user'], '--org', slug)
        assert result.returncode == 0, result.stderr
        assert result.stdout == '1 %r\n' % [org]
        line = banner(result)
        assert 'as user %s' % acme['user'] in line and 'organization %s' % org in line
        assert 'rls mode active' in line
    # Only their own organizations: another's id is refused, not silently empty.
    database.execute_sql("DELETE FROM organization_members WHERE id = 'm-two'")
    outsider = hub_shell(db_url, code, '--as', acme['user'], '--org', 'globex')
    assert outsider.returncode == 2 and 'not a member' in outsider.stderr
    single = hub_shell(db_url, code, '--as', acme['user'])  # their only one, said so
    assert single.stdout == '1 %r\n' % [acme['org']]
    assert 'their only organization' in banner(single)


def test_as_in_mode_members_says_so_and_org_narrows_nothing_it_should_not(database, db_url,
                                                                          tenants):
    acme = tenants['acme']
    result = hub_shell(db_url, 'print(Workflow.select().count())\n', '--as', acme['user'])
    line = banner(result)
    assert 'rls mode members' in line and 'every organization they belong to' in line
    assert hub_shell(db_url, 'print(1)\n', '--org', 'acme').returncode == 2


def test_users_lists_who_to_be_with_their_organizations(database, db_url, tenants):
    import json

    env = dict(os.environ, DATABASE_URL=db_url)
    proc = subprocess.run([sys.executable, '-m', 'hub', 'users', '--json'], env=env,
                          capture_output=True, text=True, timeout=120)
    rows = json.loads(proc.stdout)
    assert {row['id']: row['organizations'] for row in rows} == {
        tenants['acme']['user']: [['acme', 'OWNER']], tenants['globex']['user']: [['globex', 'OWNER']]}
    proc = subprocess.run([sys.executable, '-m', 'hub', 'users', '--org', 'globex'], env=env,
                          capture_output=True, text=True, timeout=120)
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:2] == ['id', 'email'] and len(lines) == 2
    assert lines[1].startswith(tenants['globex']['user']) and 'globex (OWNER)' in lines[1]
