"""hub as a library (hub.connect, lazy public names) and `hub shell`."""
import os
import subprocess
import sys

import hub
from hub import db as hubdb
from tests.rows import make_tenant


def shell(url, stdin, *args):
    env = dict(os.environ, DATABASE_URL=url)
    return subprocess.run([sys.executable, '-m', 'hub', 'shell', *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60)


def test_connect_resolves_like_the_cli_and_commits_at_the_end(db_url, monkeypatch):
    monkeypatch.setenv('DATABASE_URL', db_url)
    with hub.connect() as db:
        hub.Organization.create(name='Acme', slug='acme')
    assert db.is_closed()
    with hub.connect(db_url) as db:  # an explicit URL wins, as --database-url does
        assert [o.slug for o in hub.Organization.select()] == ['acme']


def test_connect_rolls_back_on_error(db_url):
    try:
        with hub.connect(db_url):
            hub.Organization.create(name='Acme', slug='acme')
            raise RuntimeError('boom')
    except RuntimeError:
        pass
    with hub.connect(db_url):
        assert hub.Organization.select().count() == 0


def test_public_names_are_exported_lazily():
    for name in hub.__all__:
        assert getattr(hub, name) is not None
    assert hub.ExecutionStatus.FAILED.value == 'FAILED'
    code = 'import sys, hub; print("peewee" in sys.modules)'
    assert subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True).stdout.strip() == 'False'


def test_shell_reads_standard_input(database, db_url):
    make_tenant(database, 'acme')
    make_tenant(database, 'globex')
    result = shell(db_url, 'print(Workflow.select().count())\nprint(db.is_closed())\n')
    assert result.returncode == 0, result.stderr
    assert '2' in result.stdout.split() and 'False' in result.stdout.split()
    [banner] = [line for line in result.stderr.splitlines() if line.startswith('hub shell')]
    assert hubdb.where(db_url) in banner


def test_shell_as_an_unknown_user_is_one_line(db_url):
    result = shell(db_url, '', '--as', 'nobody')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "'nobody'" in result.stderr


def test_shell_as_a_user_sees_what_the_tenant_sees(database, db_url):
    from hub import rls

    rls.install(database)
    acme = make_tenant(database, 'acme')
    make_tenant(database, 'globex')
    script = ('print(Workflow.select().count(), Organization.select().count())\n'
              'print(sorted({w.organization_id for w in Workflow.select()}))\n')
    result = shell(db_url, script, '--as', acme['user'])
    assert result.returncode == 0, result.stderr
    assert '1 1' in result.stdout and repr([acme['org']]) in result.stdout
    assert 'as user %s' % acme['user'] in result.stderr
    everything = shell(db_url, script)  # without --as: the owner sees both tenants
    assert '2 2' in everything.stdout
