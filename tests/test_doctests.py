"""Every `>>>` example in hub/ runs, each module's against a seeded database of its own.

The examples are written against "your database": here that is a copy of one seeded database
(2 tiny organizations, seed 1, as of 2025-01-31, a fixed key), which `database`, `hub.connect()`
and `hub.connection.resolve_url()` all reach ($DATABASE_URL). The working directory and HUB_HOME are
the test's own. No example reads the clock into its output: seeded data is dated by `as_of`.
Examples that need what a plain PostgreSQL lacks (Supabase's auth schema) say so in their
docstring and carry `# doctest: +SKIP`.
"""
import datetime
import doctest
import importlib
import pkgutil

import pytest

import hub
from hub import connection

#: Any fixed Fernet key: seeded credentials, and so the key ids the examples show, follow it.
KEY = 'rZHHKnMDOvZUQzYJ05APnmwY3RInO_ahzt5pGyDpRwE='


def _modules():
    skip = ('hub.cli', 'hub.fixtures', 'hub.migrations')
    names = ['hub'] + [m.name for m in pkgutil.walk_packages(hub.__path__, 'hub.')
                       if not m.name.startswith(skip)]
    return sorted(names)


@pytest.fixture(scope='module')
def seeded_template(databases, migrated_template):
    """Name of a seeded, secured database that the examples' databases are copied from."""
    from hub.seed import seed_database

    name = databases.create(template=migrated_template)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('HUB_SECRET_KEY', KEY)
        database = connection.open_database(databases.url(name))
        try:
            seed_database(database, orgs=2, scale='tiny', seed=1,
                          as_of=datetime.date(2025, 1, 31))
        finally:
            database.close()
    yield name
    databases.drop(name)


@pytest.mark.parametrize('name', _modules())
def test_the_examples_in_the_docstrings_run(name, databases, seeded_template, monkeypatch,
                                            tmp_path):
    copy = databases.create(template=seeded_template)
    url = databases.url(copy)
    monkeypatch.setenv('DATABASE_URL', url)
    monkeypatch.setenv('HUB_SECRET_KEY', KEY)
    monkeypatch.setenv('HUB_HOME', str(tmp_path / '.hub'))
    monkeypatch.chdir(tmp_path)
    database = connection.bind(connection.open_database(url))
    try:
        module = importlib.import_module(name)
        found = doctest.DocTestFinder().find(module, globs=dict(vars(module), database=database))
        examples = [test for test in found if test.examples]
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS
                                       | doctest.NORMALIZE_WHITESPACE)
        report = []
        for test in examples:
            runner.run(test, out=report.append)
        assert runner.failures == 0, ''.join(report)
    finally:
        database.close()
        databases.drop(copy)
