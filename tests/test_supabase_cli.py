"""The file path through the real Supabase CLI (npm `supabase`, pinned in .ci/run; no Docker):
day one (`hub db sql` + `hub seed --sql`) through `supabase db reset --db-url`, then day two (a
generated migration through `hub db migrate --sql`) through `supabase migration up --db-url`,
then `supabase db advisors --db-url`: no WARN or ERROR on our objects, and anon is denied on
every table after each step. On the Supabase-shaped cluster (tools/supabase_cluster.sh).

$HUB_SUPABASE_CLI names the CLI (else `supabase` on PATH); skipped without one, except when
HUB_REQUIRE_SUPABASE_CLI=1 (CI).
"""
import contextlib
import json
import os
import shutil
import subprocess

import psycopg2
import pytest

from tests.conftest import Api, _required
from tests.project import Project
from tests.test_fail_closed import NEW_TABLE, edit

NOWHERE = 'postgresql://nobody@127.0.0.1:9/nothing'
AS_OF = '2025-01-31'
#: The project folder the CLI reads: supabase/config.toml, supabase/migrations/, supabase/seed.sql.
CONFIG = """project_id = "hub-ci"

[db.seed]
enabled = true
sql_paths = ["./seed.sql"]
"""
OURS = ('public', 'hub_private')


@pytest.fixture(scope='module')
def cli():
    found = os.environ.get('HUB_SUPABASE_CLI') or shutil.which('supabase')
    if not found or not os.access(found, os.X_OK):
        _required('HUB_REQUIRE_SUPABASE_CLI', 'no Supabase CLI: npm i -E supabase@2.117.0 and set '
                                               'HUB_SUPABASE_CLI to its node_modules/.bin/supabase')
    return found


def supabase(cli, folder, *args):
    """`supabase ARGS --workdir folder`: the CompletedProcess (exit 0 asserted)."""
    result = subprocess.run([cli, *args, '--workdir', str(folder), '--yes'], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def cli_url(url):
    """The URL as the CLI takes it: the test cluster speaks no TLS."""
    return url + ('&' if '?' in url else '?') + 'sslmode=disable'


def rows(url, sql, params=None):
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def anon_reaches(url):
    """Every table in a schema anon may use that anon can read: [(table, SQLSTATE or None)]."""
    api = Api(url, 'authenticator')
    tables = [r[0] for r in rows(url, """
        SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND has_schema_privilege('anon', n.oid, 'USAGE') ORDER BY 1""")]
    assert 'workflows' in tables
    reached = [(t, api.error('SELECT * FROM %s LIMIT 1' % t, role='anon')) for t in tables]
    return [(t, code) for t, code in reached if code != '42501']


def clean(project, url):
    for command in (('db', 'status'), ('db', 'check'), ('rls', 'status')):
        result = project.hub(url, *command)
        assert result.returncode == 0, (command, result.stdout, result.stderr)


def test_day_one_and_day_two_through_the_supabase_cli(cli, supabase_db_url, tmp_path, secret):
    url = supabase_db_url
    project = Project(tmp_path / 'project')
    folder = project.root
    (folder / 'supabase' / 'migrations').mkdir(parents=True)
    (folder / 'supabase' / 'config.toml').write_text(CONFIG)
    migrations = folder / 'supabase' / 'migrations'

    # Day one: the schema and the seed as files, applied by `supabase db reset`.
    for args in (('db', 'sql', '-o', str(migrations / '20250101000000_hub.sql')),
                 ('seed', '--orgs', '2', '--scale', 'tiny', '--as-of', AS_OF, '-q',
                  '--sql', str(folder / 'supabase' / 'seed.sql'))):
        result = project.hub(NOWHERE, *args)
        assert result.returncode == 0, (args, result.stderr)
    supabase(cli, folder, 'db', 'reset', '--db-url', cli_url(url))
    assert rows(url, 'SELECT count(*) FROM organizations') == [(2,)]
    assert anon_reaches(url) == []
    clean(project, url)

    # Day two: a model added, its migration generated and shipped as a file.
    edit(project, NEW_TABLE)
    result = project.hub(url, 'db', 'generate', 'tags')
    assert result.returncode == 0, result.stderr
    result = project.hub(url, 'db', 'migrate', '--sql')
    assert result.returncode == 0, result.stderr
    (migrations / '20250102000000_hub_tags.sql').write_text(result.stdout)
    supabase(cli, folder, 'migration', 'up', '--db-url', cli_url(url))
    assert ('public.workflow_tags', None) not in anon_reaches(url)
    assert anon_reaches(url) == []
    clean(project, url)
    # The tenant gets the model's policies on the new table: its own organization only.
    [(org, user, workflow, other)] = rows(url, """
        SELECT m.organization_id, m.user_id, w.id,
               (SELECT id FROM organizations WHERE id <> m.organization_id LIMIT 1)
        FROM organization_members m JOIN workflows w ON w.organization_id = m.organization_id
        WHERE m.accepted_at IS NOT NULL LIMIT 1""")
    api = Api(url, 'authenticator')
    assert api.run('INSERT INTO workflow_tags (organization_id, workflow_id, label) '
                   "VALUES (%s, %s, 'mine')", (org, workflow), user=user) == 1
    assert api.error('INSERT INTO workflow_tags (organization_id, workflow_id, label) '
                     "VALUES (%s, %s, 'theirs')", (other, workflow), user=user) == '42501'

    # Supabase's own linter finds nothing to warn about in what we built.
    result = supabase(cli, folder, 'db', 'advisors', '--db-url', cli_url(url), '--type', 'all',
                      '--level', 'warn', '--output-format', 'json')
    found = json.loads(result.stdout[result.stdout.index('{'):])['results']
    ours = [(r['name'], r['level'], r['detail']) for r in found
            if r.get('metadata', {}).get('schema') in OURS]
    assert ours == []

    # Every reset replays both files from nothing: still closed, still clean.
    supabase(cli, folder, 'db', 'reset', '--db-url', cli_url(url))
    assert anon_reaches(url) == []
    clean(project, url)
