"""`hub import` on malformed input, `hub export` by id or slug into a 0600 file, `hub orgs`.

Every malformed document is one line on stderr naming the file and the JSON path, exit 1, and
the target database exactly as it was (a crafted file is the attack surface: tests/test_import_attacks.py).
"""
import datetime
import json
import os
import stat

import pytest
from click.testing import CliRunner

from hub import snapshot
from hub.cli.main import cli
from tests.test_import_attacks import evil, fingerprint, source, victim  # noqa: F401 (fixtures)


def run(db_url, *args, **kwargs):
    return CliRunner().invoke(cli, ['--database-url', db_url] + list(args), **kwargs)


def import_bytes(db_url, data, tmp_path, *flags):
    path = tmp_path / 'bad.json'
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return run(db_url, 'import', str(path), *flags)


def one_line(result, *fragments, code=1):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def clean(doc):
    return {k: v for k, v in doc.items() if k != 'ids'}


DEEP = 200000
CASES = {
    'row is not an object': (
        lambda d: d['tables']['workflows'].__setitem__(0, 'x'),
        'tables.workflows[0]: expected an object (one row), got a string'),
    'missing required column': (
        lambda d: d['tables']['ai_agents'][0].pop('name'),
        'tables.ai_agents[0].name: missing; this column is required'),
    'unknown column': (
        lambda d: d['tables']['ai_agents'][0].__setitem__('is_admin', True),
        'tables.ai_agents[0].is_admin: unknown column; the table has id, '),
    'unknown table': (
        lambda d: d['tables'].__setitem__('secrets', []),
        'tables.secrets: unknown table'),
    'unknown top-level key': (
        lambda d: d.__setitem__('run_after_import', 'rm -rf /'),
        'run_after_import: unknown key'),
    'string for an integer': (
        lambda d: d['tables']['ai_agents'][0].__setitem__('execution_count', '12'),
        'tables.ai_agents[0].execution_count: expected an integer, got a string'),
    'boolean for an integer': (
        lambda d: d['tables']['ai_agents'][0].__setitem__('execution_count', True),
        'tables.ai_agents[0].execution_count: expected an integer, got true'),
    'integer out of range': (
        lambda d: d['tables']['ai_agents'][0].__setitem__('execution_count', 2 ** 40),
        'tables.ai_agents[0].execution_count: 1099511627776 is out of range'),
    'unknown enum label': (
        lambda d: d['tables']['organization_members'][0].__setitem__('role', 'SUPERUSER'),
        'tables.organization_members[0].role: expected one of OWNER, ADMIN, MEMBER; got "SUPERUSER"'),
    'timestamp without offset': (
        lambda d: d['tables']['workflows'][0].__setitem__('created_at', '2026-01-01 00:00'),
        'tables.workflows[0].created_at: expected a timestamp with its offset'),
    'text array of numbers': (
        lambda d: d['tables']['workflows'][0].__setitem__('tags', [1]),
        'tables.workflows[0].tags[0]: expected a string, got a number'),
    'too long for varchar': (
        lambda d: d['tables']['organizations'][0].__setitem__('name', 'x' * 101),
        'tables.organizations[0].name: too long: 101 characters, at most 100'),
    'oversized string': (
        lambda d: d['tables']['workflows'][0].__setitem__('description', 'x' * (2 ** 20 + 1)),
        'tables.workflows[0].description: a string of 1048577 characters, over the limit'),
    'NUL character': (
        lambda d: d['tables']['workflows'][0].__setitem__('variables', {'a': ['ok', 'x\x00y']}),
        'tables.workflows[0].variables.a[1]: contains a NUL character'),
    'lone surrogate': (
        lambda d: d['tables']['workflows'][0].__setitem__('description', '\ud800'),
        'tables.workflows[0].description: contains half a surrogate pair'),
    'field nested too deeply': (
        lambda d: d['tables']['workflows'][0].__setitem__('variables', json.loads('[' * 70 + ']' * 70)),
        'tables.workflows[0].variables: nested deeper than 64 levels'),
    'graph with an unknown node type': (
        lambda d: d['tables']['workflows'][0]['nodes'][1].__setitem__('type', 'shell'),
        "tables.workflows[0].nodes[1].type: unknown node type 'shell'"),
    'graph with an edge back out of its end': (
        lambda d: d['tables']['workflows'][0]['edges'].append({'id': 'back', 'source': 'o', 'target': 't'}),
        "tables.workflows[0].edges[1]: 'o' is an end node; nothing runs after it"),
    'graph edge end that is an object': (
        lambda d: d['tables']['workflows'][0]['edges'][0].__setitem__('source', {'x': 1}),
        "tables.workflows[0].edges[0].source: no node has id {'x': 1}"),
    'graph node type that is an array': (
        lambda d: d['tables']['workflows'][0]['nodes'][1].__setitem__('type', ['end']),
        "tables.workflows[0].nodes[1].type: unknown node type ['end']"),
    'graph too large': (
        lambda d: d['tables']['workflow_templates'][0].__setitem__(
            'nodes', [{'id': 'n%d' % i, 'type': 'code', 'position': {'x': 0, 'y': 0}, 'data': {}}
                      for i in range(1001)]),
        'tables.workflow_templates[0].nodes: 1001 nodes, over the limit of 1000'),
    'a CHECK the database enforces': (
        lambda d: d['tables']['ai_agents'][0].__setitem__('success_rate', 2),
        'tables.ai_agents[0]: refused by the database: new row for relation "ai_agents" '
        'violates check constraint'),
    'a duplicate membership': (
        lambda d: d['tables']['organization_members'].append(
            dict(d['tables']['organization_members'][0], id='c' + 'm' * 24)),
        'tables.organization_members[1]: refused by the database: duplicate key value'),
    'a duplicate id': (
        lambda d: d['tables']['ai_agents'].append(dict(d['tables']['ai_agents'][0])),
        "tables.ai_agents[1].id: '"),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_a_malformed_row_is_one_line_and_writes_nothing(database, db_url, victim, evil, tmp_path,
                                                        case):
    change, message = CASES[case]
    doc = clean(evil)
    change(doc)
    before = fingerprint(database)
    result = import_bytes(db_url, json.dumps(doc), tmp_path)
    line = one_line(result, 'bad.json: ' + message)
    assert 'Traceback' not in result.output and len(line) < 2000
    assert fingerprint(database) == before


@pytest.mark.parametrize('data, message', [
    (b'{"format": "neuroflow-hub/organization", "name": "caf\xe9"}', 'not UTF-8 text (byte 53)'),
    (b'[' * DEEP + b']' * DEEP, 'JSON nested too deeply to read'),
    (b'{"a": ' * DEEP + b'1' + b'}' * DEEP, 'JSON nested too deeply to read'),
    (b'{"format": NaN}', 'not JSON (NaN is not JSON; use null or a number)'),
    (b'{"format": 1, "format": 2}', 'key "format" appears twice in one object'),
    (b'{"format": ' + b'9' * 5000 + b'}', 'not JSON'),
    (b'', 'not JSON (Expecting value at line 1, column 1)'),
    (b'[]', 'not an organization snapshot'),
])
def test_a_malformed_document_is_one_line_and_writes_nothing(database, db_url, tmp_path, data,
                                                             message):
    before = fingerprint(database)
    result = import_bytes(db_url, data, tmp_path)
    one_line(result, 'bad.json: ', message)
    assert fingerprint(database) == before


def test_an_infinite_number_is_refused(database, db_url, victim, evil, tmp_path):
    text = json.dumps(clean(evil)).replace('"execution_count": 0', '"execution_count": 1e400', 1)
    before = fingerprint(database)
    one_line(import_bytes(db_url, text, tmp_path), 'bad.json: tables.', 'a number too large for JSON')
    assert fingerprint(database) == before


def test_an_oversized_file_is_refused_before_it_is_read(database, db_url, evil, tmp_path,
                                                        monkeypatch):
    text = json.dumps(clean(evil))
    monkeypatch.setattr(snapshot, 'MAX_BYTES', len(text) - 1)
    before = fingerprint(database)
    one_line(import_bytes(db_url, text, tmp_path), 'bad.json: %d bytes, over the limit' % len(text))
    assert fingerprint(database) == before


def test_import_reads_standard_input(database, db_url, victim, evil):
    result = run(db_url, 'import', '-', input=json.dumps(clean(evil)).encode())
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == evil['organization_id']
    result = run(db_url, 'import', '-', input=b'\xff')
    one_line(result, '<stdin>: not UTF-8 text (byte 0)')


def test_a_missing_file_is_one_line(db_url, tmp_path):
    one_line(run(db_url, 'import', str(tmp_path / 'nope.json')),
             'nope.json: cannot read: No such file or directory')


# -- export ------------------------------------------------------------------------------------

def test_export_accepts_an_id_or_a_slug(source, evil):
    org_id = evil['organization_id']
    by_id = snapshot.dumps(snapshot.export_organization(source, org_id))
    assert snapshot.dumps(snapshot.export_organization(source, 'evil')) == by_id


def test_export_writes_a_0600_file_and_stdout_still_works(database, db_url, victim, tmp_path):
    target = tmp_path / 'globex.json'
    target.write_text('old')
    os.chmod(target, 0o644)  # an existing, world-readable file is narrowed before it is written
    result = run(db_url, 'export', '--org', 'globex', '-o', str(target))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    fresh = tmp_path / 'fresh.json'
    assert run(db_url, 'export', '--org', victim['org'], '-o', str(fresh)).exit_code == 0
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o600
    assert fresh.read_text() == target.read_text()
    result = run(db_url, 'export', '--org', 'globex')
    assert result.exit_code == 0 and result.stdout == target.read_text()


def test_export_of_an_unknown_organization_points_at_hub_orgs(db_url):
    one_line(run(db_url, 'export', '--org', 'nope'),
             "organization 'nope' does not exist (no id or slug matches); list them with "
             "`hub orgs`", code=2)


def test_export_to_an_unwritable_place_is_one_line(db_url, victim, tmp_path):
    one_line(run(db_url, 'export', '--org', 'globex', '-o', str(tmp_path / 'no' / 'x.json')),
             'cannot write', 'No such file or directory', code=2)


def test_an_id_wins_over_a_slug(database, victim):
    # An ADMIN may rename its slug; ids are generated and never match a slug by accident.
    database.execute_sql("INSERT INTO organizations (id, name, slug) VALUES ('c-other', 'O', %s)",
                         (victim['org'],))
    assert snapshot.find_organization(database, victim['org']) == victim['org']


# -- orgs --------------------------------------------------------------------------------------

def test_orgs_lists_ids_and_slugs(database, db_url, victim):
    result = run(db_url, 'orgs')
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split() == ['id', 'slug', 'name', 'members', 'workflows']
    assert row.split() == [victim['org'], 'globex', 'Acme', '1', '1']
    result = run(db_url, 'orgs', '--json')
    [item] = json.loads(result.stdout)
    assert (item['id'], item['slug'], item['members'], item['workflows']) == (
        victim['org'], 'globex', 1, 1)
    assert datetime.datetime.fromisoformat(item['created_at']).utcoffset() is not None


def test_orgs_on_an_empty_database_says_what_to_do(db_url):
    result = run(db_url, 'orgs')
    assert result.exit_code == 0 and result.stdout == ''
    assert 'no organizations' in result.stderr
    assert json.loads(run(db_url, 'orgs', '--json').stdout) == []


def test_import_into_an_unmigrated_database_says_to_migrate(empty_db_url, evil, tmp_path):
    # Before: "unknown column ...; the table has " (an empty list), blaming the file.
    path = tmp_path / 'evil.json'
    path.write_text(json.dumps({k: v for k, v in evil.items() if k != 'ids'}))
    line = one_line(run(empty_db_url, 'import', str(path)), 'is not migrated',
                    'run `hub db migrate` first', code=1)
    assert 'unknown column' not in line
