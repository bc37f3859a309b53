"""Guards around the history: checksums of applied files, a history written by an older hub,
and `hub db migrate --fake` adopting a database whose schema already matches."""
import shutil

import pytest
from click.testing import CliRunner

from hub import lifecycle, migrate, schema
from hub.cli.main import cli
from hub.errors import SchemaDrift
from tests.test_migrations import ALL


def invoke(url, *args):
    return CliRunner().invoke(cli, ['--database-url', url, *args])


def history(database):
    return database.execute_sql('SELECT name, checksum FROM hub_migrations ORDER BY name').fetchall()


def test_migrate_records_each_files_checksum(database):
    files = {p.stem: migrate.checksum(p) for p in migrate.MIGRATIONS_DIR.glob('[0-9]*.py')}
    assert history(database) == sorted(files.items())
    assert migrate.edited(database) == []


def test_a_file_edited_after_it_was_applied_is_named_with_the_fix(database, tmp_path):
    folder = tmp_path / 'migrations'
    shutil.copytree(migrate.MIGRATIONS_DIR, folder)
    edited = folder / ('%s.py' % ALL[-1])
    edited.write_text(edited.read_text() + '\n# changed after it was applied\n')
    assert migrate.edited(database, folder) == [(ALL[-1], str(edited))]
    message = migrate.edited_message(ALL[-1], str(edited))
    assert message.startswith('%s.py was edited after it was applied' % ALL[-1])
    assert 'git checkout -- %s)' % edited in message  # outside the working folder: absolute
    assert '`hub db new NAME`' in message


def test_status_reports_an_edited_migration_and_exits_1(database, db_url):
    # The recorded checksum no longer matches the file: as if the file changed since.
    database.execute_sql("UPDATE hub_migrations SET checksum = 'x' WHERE name = %s", (ALL[0],))
    result = invoke(db_url, 'db', 'status')
    assert result.exit_code == 1
    line = next(l for l in result.stdout.splitlines() if l.startswith(ALL[0]))
    assert line.endswith('(edited since)')
    assert '%s.py was edited after it was applied' % ALL[0] in result.stderr
    assert 'restore it (git checkout -- ' in result.stderr
    result = invoke(db_url, 'db', 'status', '--json')
    assert result.exit_code == 1 and '"edited": true' in result.stdout
    # migrate still works (nothing pending) and warns
    result = invoke(db_url, 'db', 'migrate')
    assert result.exit_code == 0
    assert 'warning: %s.py was edited after it was applied' % ALL[0] in result.stderr


def test_a_history_from_an_older_hub_gains_checksums_on_migrate(database, db_url):
    database.execute_sql('ALTER TABLE hub_migrations DROP COLUMN checksum')
    assert migrate.edited(database) == []          # nothing recorded: nothing to compare
    result = invoke(db_url, 'db', 'status')
    assert result.exit_code == 0, result.output
    assert 'edited' not in result.output
    assert migrate.migrate(database) == []         # up to date, and now with checksums
    assert [c for _, c in history(database)] == [
        migrate.checksum(migrate.MIGRATIONS_DIR / ('%s.py' % name)) for name in ALL]
    assert schema.check(database) == []            # the history table stays out of the check


def test_fake_adopts_a_database_whose_schema_matches(database, db_url):
    database.execute_sql('DROP TABLE hub_migrations')  # e.g. a schema restored without history
    result = invoke(db_url, 'db', 'status')
    assert result.exit_code == 1 and '%d pending' % len(ALL) in result.stderr
    result = invoke(db_url, 'db', 'migrate', '--fake', ALL[1])
    assert result.exit_code == 0, result.output
    assert result.stdout == ''.join('recorded %s (not run)\n' % n for n in ALL[:2])
    result = invoke(db_url, 'db', 'migrate', '--fake')
    assert result.stdout == ''.join('recorded %s (not run)\n' % n for n in ALL[2:])
    assert invoke(db_url, 'db', 'status').exit_code == 0
    assert [c is not None for _, c in history(database)] == [True] * len(ALL)
    result = invoke(db_url, 'db', 'migrate', '--fake')
    assert result.exit_code == 0 and 'nothing to record' in result.stderr


def test_fake_refuses_a_database_that_differs_and_records_nothing(database, db_url):
    database.execute_sql('DROP TABLE hub_migrations')
    database.execute_sql('ALTER TABLE workflows DROP COLUMN version')
    result = invoke(db_url, 'db', 'migrate', '--fake')
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert '\n' not in line and 'Traceback' not in result.output
    assert 'refusing to record migrations as applied' in line
    assert 'workflows.version: column is missing from the database' in line
    assert 'hub db check' in line
    with pytest.raises(SchemaDrift):
        lifecycle.adopt(database)
    assert database.execute_sql("SELECT to_regclass('public.hub_migrations')").fetchone()[0] is None
