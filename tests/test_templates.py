"""Loading the marketplace into PostgreSQL, and `hub templates load|list|validate`."""
import datetime
import json

import pytest
from click.testing import CliRunner

from hub import marketplace
from hub.cli.main import cli
from hub.ids import new_id, stable_id
from hub.models import Organization, WorkflowTemplate

FOLDER = marketplace.fixtures_dir()
STEMS = sorted(f.name[:-5] for f in FOLDER.iterdir() if f.name.endswith('.json'))


def _table(db):
    cursor = db.execute_sql('SELECT * FROM workflow_templates ORDER BY id')
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def _run(db_url, *args):
    result = CliRunner().invoke(cli, ['--database-url', db_url, 'templates'] + list(args))
    return result.exit_code, result.stdout, result.stderr


def test_load_inserts_every_file_as_a_system_template(database):
    assert marketplace.load(database) == len(STEMS)
    rows = {r['id']: r for r in _table(database)}
    assert set(rows) == {stable_id('template', stem) for stem in STEMS}
    for stem in STEMS:
        doc = json.loads((FOLDER / (stem + '.json')).read_text())
        row = rows[stable_id('template', stem)]
        assert row['organization_id'] is None and row['created_by'] is None
        assert row['is_public'] is True and row['is_featured'] is doc.get('featured', False)
        assert (row['name'], row['category'], row['difficulty']) == (
            doc['name'], doc['category'], doc['difficulty'])
        assert (row['nodes'], row['edges'], row['variables'], row['tags']) == (
            doc['nodes'], doc['edges'], doc['variables'], doc['tags'])
        assert row['usage_count'] == 0 and row['rating'] is None
        assert row['created_at'] == row['updated_at']


def test_a_second_load_changes_nothing(database):
    marketplace.load(database)
    before = _table(database)
    versions = database.execute_sql('SELECT id, xmin::text FROM workflow_templates').fetchall()
    assert marketplace.sync(database) == {'total': len(STEMS), 'inserted': 0, 'updated': 0,
                                          'unchanged': len(STEMS)}
    assert _table(database) == before
    # Not even rewritten with equal values: no new row versions, no dead tuples.
    assert database.execute_sql('SELECT id, xmin::text FROM workflow_templates').fetchall() == versions


def test_a_reload_restores_content_but_keeps_usage(database):
    marketplace.load(database)
    first = stable_id('template', STEMS[0])
    (WorkflowTemplate.update(usage_count=41, rating=4.5, name='Edited by hand', is_public=False)
     .where(WorkflowTemplate.id == first).execute())
    counts = marketplace.sync(database)
    assert (counts['updated'], counts['unchanged']) == (1, len(STEMS) - 1)
    row = WorkflowTemplate.get_by_id(first)
    expected = json.loads((FOLDER / (STEMS[0] + '.json')).read_text())['name']
    assert (row.name, row.is_public, row.usage_count, row.rating) == (expected, True, 41, 4.5)


def test_load_with_a_timestamp_is_reproducible(database):
    stamp = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.timezone.utc)
    marketplace.load(database, timestamp=stamp)
    stamps = database.execute_sql('SELECT DISTINCT created_at, updated_at FROM '
                                  'workflow_templates').fetchall()
    assert stamps == [(stamp, stamp)]


def test_list_shows_public_templates_by_category(database):
    marketplace.load(database)
    org = Organization.create(name='Acme', slug='acme')
    WorkflowTemplate.create(id=new_id(), name='Our private flow', description='internal',
                            category='SALES', nodes=[], edges=[], organization=org)
    listed = marketplace.list_templates(database)
    assert len(listed) == len(STEMS)
    assert 'Our private flow' not in {t['name'] for t in listed}
    order = [marketplace.CATEGORIES.index(t['category']) for t in listed]
    assert order == sorted(order)
    sales = marketplace.list_templates(database, 'sales')
    assert sales and {t['category'] for t in sales} == {'SALES'}
    assert [t['is_featured'] for t in sales] == sorted((t['is_featured'] for t in sales),
                                                        reverse=True)
    assert {'organization_id', 'created_by', 'nodes', 'usage_count'} <= set(sales[0])


def test_cli_load_then_list(db_url):
    code, out, err = _run(db_url, 'load')
    assert (code, err) == (0, '')
    assert out == '%d templates: %d new, 0 updated, 0 unchanged\n' % (len(STEMS), len(STEMS))
    code, out, _ = _run(db_url, 'load')
    assert out == '%d templates: 0 new, 0 updated, %d unchanged\n' % (len(STEMS), len(STEMS))
    code, out, err = _run(db_url, 'list')
    assert code == 0 and len(out.splitlines()) == len(STEMS)
    assert err.startswith('%d templates' % len(STEMS))
    names = {json.loads((FOLDER / (s + '.json')).read_text())['name'] for s in STEMS}
    assert all(any(name in line for line in out.splitlines()) for name in names)


def test_cli_list_json_and_category(db_url):
    _run(db_url, 'load')
    code, out, _ = _run(db_url, 'list', '--json')
    assert code == 0
    listed = json.loads(out)
    assert {t['id'] for t in listed} == {stable_id('template', s) for s in STEMS}
    assert all(isinstance(t['nodes'], list) and t['created_at'].endswith('+00:00') for t in listed)
    code, out, _ = _run(db_url, 'list', '--category', 'Data-Processing', '--json')
    subset = json.loads(out)
    assert code == 0 and subset
    assert subset == [t for t in listed if t['category'] == 'DATA_PROCESSING']


def test_cli_list_unknown_category_is_a_one_line_usage_error(db_url):
    code, out, err = _run(db_url, 'list', '--category', 'finance')
    assert code == 2 and out == ''
    assert err == ("Error: unknown category 'finance'; use one of SALES, SUPPORT, MARKETING, "
                   "DATA_PROCESSING, AUTOMATION, ANALYTICS, CONTENT, COMMUNICATION\n")


def test_cli_list_on_an_empty_marketplace_says_what_to_do(db_url):
    code, out, err = _run(db_url, 'list')
    assert (code, out) == (0, '')
    assert err == 'no templates: run `hub templates load`\n'


def test_cli_malformed_fixture_loads_nothing(db_url, tmp_path):
    good = json.loads((FOLDER / (STEMS[0] + '.json')).read_text())
    (tmp_path / 'a-fine-one.json').write_text(json.dumps(good))
    bad = json.loads(json.dumps(good))
    bad['name'] = 'Another name'
    bad['nodes'][2]['position']['x'] = 'left'
    (tmp_path / 'lead-qualification.json').write_text(json.dumps(bad))
    code, out, err = _run(db_url, 'load', '--dir', str(tmp_path))
    assert code == 1 and out == ''
    assert err == ('Error: lead-qualification.json: nodes[2].position.x: expected a number, '
                   'got a string\n')
    database_url_check = _run(db_url, 'list', '--json')
    assert json.loads(database_url_check[1]) == []


def test_cli_validate_needs_no_database(tmp_path):
    result = CliRunner().invoke(cli, ['--database-url', 'postgresql://nobody@127.0.0.1:1/none',
                                      'templates', 'validate'])
    assert result.exit_code == 0 and result.stdout == '%d templates are valid\n' % len(STEMS)
    (tmp_path / 'x.json').write_text('[]')
    result = CliRunner().invoke(cli, ['templates', 'validate', '--dir', str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr == 'Error: x.json: expected an object, got an array\n'


@pytest.mark.parametrize('args', [['templates'], ['templates', 'load'], ['templates', 'list'],
                                  ['templates', 'validate']])
def test_every_command_has_help(args):
    result = CliRunner().invoke(cli, args + ['--help'])
    assert result.exit_code == 0 and len(result.stdout.split('\n\n')[1].strip()) > 20


def test_validate_on_an_unreadable_folder_or_file_or_a_file_as_dir_is_one_line(tmp_path):
    # Before: a PermissionError traceback for the first two, "does not exist" for the third.
    import os
    import shutil
    import subprocess
    import sys

    unreadable = tmp_path / 'unreadable'
    unreadable.mkdir()
    shipped = marketplace.fixtures_dir() / 'lead-qualification.json'
    one = tmp_path / 'one'
    one.mkdir()
    (one / 'a.json').write_bytes(shipped.read_bytes())
    (one / 'b.json').write_bytes(shipped.read_bytes())
    unreadable.chmod(0o000)
    (one / 'b.json').chmod(0o000)
    # Root reads anything: run without the capabilities that override file modes.
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which('setpriv'):
            pytest.skip('setpriv (util-linux) is needed to drop root\'s override of file modes')
        prefix = ['setpriv', '--bounding-set=-dac_override,-dac_read_search']
    try:
        for folder, code, words in (
                (unreadable, 2, 'cannot read the template folder %s (Permission denied)'
                 % unreadable),
                (one, 1, 'b.json: cannot read it (Permission denied)'),
                (one / 'a.json', 2, 'template folder %s is a file, not a folder' % (one / 'a.json'))):
            proc = subprocess.run([*prefix, sys.executable, '-m', 'hub', 'templates', 'validate',
                                   '--dir', str(folder)], capture_output=True, text=True)
            assert proc.returncode == code, proc.stderr
            assert proc.stderr.count('\n') == 1 and 'Traceback' not in proc.stderr
            assert words in proc.stderr, proc.stderr
    finally:
        unreadable.chmod(0o700)
        (one / 'b.json').chmod(0o600)


def test_list_counts_the_workflows_seeded_from_each_template(db_url, secret):
    # Before: "used 0" on every template, although seeded workflows are made from them.
    from hub import connection
    from hub.seed import seed_database

    database = connection.open_database(db_url)
    try:
        seed_database(database, orgs=3, scale='small', as_of=datetime.date(2025, 1, 31))
        made = dict(database.execute_sql(
            'SELECT template_id, count(*) FROM workflows WHERE template_id IS NOT NULL '
            'GROUP BY template_id').fetchall())
    finally:
        database.close()
    listed = json.loads(_run(db_url, 'list', '--json')[1])
    # Public templates only (an organization's own templates are not in the marketplace).
    public = {row['id']: made.get(row['id'], 0) for row in listed}
    assert sum(public.values()) > 0
    assert {row['id']: row['workflows'] for row in listed} == public
    lines = _run(db_url, 'list')[1].splitlines()
    used = sum(int(line.rsplit('used ', 1)[1]) for line in lines)
    assert used == sum(public.values())
