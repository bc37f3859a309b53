"""Snapshot arrays and strings are capped before they cost memory (issue 19, item 9).

Before: one 20-million-element array in a field (80 MB, under MAX_BYTES) took 3.5 GB while the
import checked it, and then loaded. The peak memory of `hub import` is measured in a subprocess
of its own (resource.getrusage of its children), against the same import without the array.
"""
import json
import subprocess
import sys

import pytest

from hub import snapshot
from hub.errors import SnapshotError
from tests.rows import make_tenant
from tests.test_import_attacks import source, valid_graphs  # noqa: F401  (a fixture)

ELEMENTS = 2000000  # 20x the limit; about 4 MB of JSON

PEAK = """
import os, resource, subprocess, sys
result = subprocess.run([sys.executable, '-m', 'hub', 'import', sys.argv[1], '--as-new'],
                        capture_output=True, text=True)
sys.stdout.write('%d\\n%d\\n%s' % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                                   result.returncode, result.stderr))
"""


def peak_import(db_url, path):
    """(peak RSS in MiB, exit code, stderr) of `hub import PATH --as-new` on `db_url`."""
    import os

    done = subprocess.run([sys.executable, '-c', PEAK, str(path)], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, DATABASE_URL=db_url))
    peak, code, stderr = done.stdout.split('\n', 2)
    return int(peak) / 1024, int(code), stderr


@pytest.fixture
def exported(source):
    """An organization exported from another database (`source`)."""
    ids = make_tenant(source, 'acme')
    valid_graphs(source, ids['org'])
    return json.loads(snapshot.dumps(snapshot.export_organization(source, ids['org'])))


def test_a_huge_array_in_a_field_is_refused_before_it_costs_memory(db_url, exported, tmp_path,
                                                                    secret):
    plain = tmp_path / 'plain.json'
    plain.write_text(json.dumps(exported))
    baseline, code, stderr = peak_import(db_url, plain)
    assert code == 0, stderr
    exported['tables']['workflows'][0]['variables'] = [0] * ELEMENTS
    exported['tables']['users'][0]['email'] = 'someone-else@acme.example'  # not the same user
    huge = tmp_path / 'huge.json'
    huge.write_text(json.dumps(exported))
    peak, code, stderr = peak_import(db_url, huge)
    [line] = stderr.strip().splitlines()
    assert code == 1, line
    assert 'tables.workflows[0].variables' in line, line
    assert 'an array of %d elements, over the limit of %d' % (ELEMENTS, snapshot.MAX_ELEMENTS) \
        in line, line
    # The parsed list itself is ~16 MB of pointers; what the check adds must stay small.
    print("\npeak RSS of hub import: %.0f MiB with the array, %.0f MiB without" % (peak, baseline))
    assert peak - baseline < 64, (peak, baseline)


def test_a_field_object_with_too_many_members_is_refused(db_url, exported):
    exported['tables']['workflows'][0]['variables'] = {
        'k%d' % i: 0 for i in range(snapshot.MAX_ELEMENTS + 1)}
    with pytest.raises(SnapshotError, match=r'tables\.workflows\[0\]\.variables: an object of '
                                            r'100001 members, over the limit of 100000'):
        from hub import connection

        database = connection.bind(connection.open_database(db_url))
        try:
            snapshot.import_organization(database, exported, as_new=True)
        finally:
            database.close()


def test_too_many_values_are_refused_before_parsing(monkeypatch, exported):
    monkeypatch.setattr(snapshot, 'MAX_SEPARATORS', 1000)
    exported['tables']['workflows'][0]['variables'] = [0] * 2000
    with pytest.raises(SnapshotError) as info:
        snapshot.loads(json.dumps(exported), name='big.json')
    message = str(info.value)
    assert message.startswith('big.json: ') and 'over the limit of 1000 values' in message
    assert len(message.splitlines()) == 1


def test_too_many_rows_in_a_table_are_refused(monkeypatch, exported):
    monkeypatch.setattr(snapshot, 'MAX_ROWS', 2)
    rows = exported['tables']['workflows']
    exported['tables']['workflows'] = [dict(rows[0], id='w%d' % i) for i in range(3)]
    with pytest.raises(SnapshotError, match=r'^x\.json: tables\.workflows: 3 rows, over the '
                                            r'limit of 2 rows per table'):
        snapshot.check_document(exported, 'x.json')
