"""hub as a library: hub.connect and the lazy public names (`hub shell`: tests/test_shell.py)."""
import subprocess
import sys

import hub


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
