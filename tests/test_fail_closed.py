"""Fail closed at creation: every migration ends, in its own transaction, with the
row-level-security sync (hub.rls.sync_sql), so no committed instant has a table the API roles
reach beyond the model. Each attack runs as PostgREST does (login role, SET LOCAL ROLE anon or
authenticated, transaction-local claims) on the Supabase-shaped cluster, whose default
privileges grant the API roles ALL on every new table, and on PostgreSQL 15 given the same
default privileges. Each succeeded before the sync existed.

Every case runs on a copy of the project (tests/project.py) whose models are edited, as a
platform developer would before `hub db generate`.
"""
import contextlib
import threading
import time
from pathlib import Path

import psycopg2
import pytest

from hub import connection, lifecycle, migrate
from tests.conftest import Api
from tests.project import Project
from tests.rows import make_tenant

MODELS = 'hub/models.py'
AS_OF = '2025-01-31'

#: A new tenant table (a child of workflows, kind 'child'), as tests/test_autogen.py adds it.
NEW_TABLE = [
    ("\n#: Every model, parents before children",
     "\nclass WorkflowTag(BaseModel):\n"
     "    organization = ForeignKeyField(Organization, on_delete='CASCADE')\n"
     "    workflow = TenantForeignKey(Workflow, on_delete='CASCADE')\n"
     "    label = CharField(max_length=50)\n\n"
     "    class Meta:\n        table_name = 'workflow_tags'\n"
     "        indexes = ((('workflow', 'label'), True),)\n\n\n"
     "#: Every model, parents before children"),
    ("TeamExecution, Integration)", "TeamExecution, Integration, WorkflowTag)")]
WORKFLOW_VERSION = "    version = CharField(max_length=20, default='1.0.0')\n"
NEW_COLUMN = [(WORKFLOW_VERSION, WORKFLOW_VERSION + '    priority = IntegerField(default=0)\n')]

#: What the attacker tries on a table it must not reach.
ATTACKS = ('SELECT * FROM public.{table}', 'TRUNCATE public.{table}',
           "INSERT INTO public.{table} DEFAULT VALUES", 'DELETE FROM public.{table}')


def supabase_defaults(url):
    """Supabase's default privileges (tools/supabase_shape.sql), given to a PG15 database."""
    with contextlib.closing(psycopg2.connect(url)) as conn, conn, conn.cursor() as cur:
        for kind in ('TABLES', 'FUNCTIONS', 'SEQUENCES'):
            cur.execute('ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON %s TO anon, '
                        'authenticated, service_role' % kind)


@pytest.fixture(params=['supabase', 'pg15'])
def target(request, api_login):
    """(database URL, Api): a fresh, empty Supabase-shaped database and its `authenticator`,
    or a PostgreSQL 15 one with Supabase's default privileges and a login like it."""
    if request.param == 'supabase':
        url = request.getfixturevalue('supabase_db_url')
        return url, Api(url, 'authenticator')
    url = request.getfixturevalue('empty_db_url')
    supabase_defaults(url)
    return url, Api(url, api_login)


@pytest.fixture
def supabase(supabase_db_url):
    return supabase_db_url, Api(supabase_db_url, 'authenticator')


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path / 'project')


def ok(project, url, *args):
    result = project.hub(url, *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def edit(project, edits):
    for old, new in edits:
        project.edit(MODELS, old, new)


def generated(project, url, edits, name):
    """Edit the copy's models and write the migration `hub db generate` makes of them."""
    edit(project, edits)
    ok(project, url, 'db', 'generate', name)


def denied(api, table, roles=('anon', 'authenticated')):
    """{(role, attack): SQLSTATE} of every attack that did not fail with 42501."""
    out = {}
    for role in roles:
        for attack in ATTACKS:
            code = api.error(attack.format(table=table), role=role)
            if code != '42501':
                out[role, attack] = code
    return out


def tenant(url, slug):
    with contextlib.closing(connection.open_database(url)) as database:
        return make_tenant(database, slug)


def owner_query(url, sql, params=None):
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_a_generated_table_is_closed_right_after_migrate(project, target):
    """No `hub rls install` at all: the new table is deny-all, never open."""
    url, api = target
    ok(project, url, 'db', 'migrate')
    generated(project, url, NEW_TABLE, 'tags')
    ok(project, url, 'db', 'migrate')
    assert denied(api, 'workflow_tags') == {}
    assert owner_query(url, "SELECT relrowsecurity FROM pg_class "
                            "WHERE oid = 'public.workflow_tags'::regclass") == [(True,)]
    # and every shipped table too: none is reachable before the policies exist
    assert denied(api, 'workflows', roles=('anon',)) == {}


def test_migrate_then_install_leaves_no_window(project, supabase):
    """An anon writer hammers the new table while `hub db migrate && hub rls install` run:
    it must plant nothing (the old code let 45 rows through in 0.26 s)."""
    url, api = supabase
    ok(project, url, 'db', 'migrate')
    ok(project, url, 'rls', 'install')
    victim = tenant(url, 'victim')
    generated(project, url, NEW_TABLE, 'tags')
    stop, seen = threading.Event(), {'attempts': 0, 'planted': 0, 'refused': 0}

    def hammer():
        with contextlib.closing(api.connect()) as conn:
            conn.autocommit = False
            while not stop.is_set():
                seen['attempts'] += 1
                try:
                    with conn.cursor() as cur:
                        cur.execute('SET LOCAL ROLE anon')
                        cur.execute("INSERT INTO public.workflow_tags (organization_id, "
                                    "workflow_id, label) VALUES (%s, %s, %s)",
                                    (victim['org'], victim['workflow'],
                                     'planted %d' % seen['attempts']))
                    conn.commit()
                    seen['planted'] += 1
                except psycopg2.Error as exc:
                    conn.rollback()
                    seen['refused'] += exc.pgcode == '42501'
    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        ok(project, url, 'db', 'migrate')
        ok(project, url, 'rls', 'install')
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    rows = owner_query(url, 'SELECT count(*) FROM public.workflow_tags')[0][0]
    assert (seen['planted'], rows) == (0, 0), seen
    assert seen['refused'] > 0, seen  # it did hammer the table once it existed


def test_a_new_column_is_updatable_by_its_tenant(project, target):
    url, api = target
    ok(project, url, 'db', 'migrate')
    ok(project, url, 'rls', 'install')
    ids = tenant(url, 'acme')
    generated(project, url, NEW_COLUMN, 'priority')
    ok(project, url, 'db', 'migrate')
    assert api.run('UPDATE public.workflows SET priority = 5 WHERE id = %s', (ids['workflow'],),
                   user=ids['user']) == 1
    # and still not the columns no tenant may change
    assert api.error('UPDATE public.workflows SET organization_id = organization_id',
                     user=ids['user']) == '42501'
    ok(project, url, 'rls', 'status')
    ok(project, url, 'db', 'prisma')


def test_seed_applies_pending_migrations_closed(project, supabase, secret):
    url, api = supabase
    ok(project, url, 'db', 'migrate')
    ok(project, url, 'rls', 'install')
    generated(project, url, NEW_TABLE, 'tags')
    ok(project, url, 'seed', '--orgs', '1', '--scale', 'tiny', '--as-of', AS_OF, '-q')
    assert denied(api, 'workflow_tags', roles=('anon',)) == {}
    ok(project, url, 'rls', 'status')  # its policies and grants are the model's


def test_rollback_then_migrate_leaves_check_clean(project, target):
    url, api = target
    ok(project, url, 'db', 'migrate')
    ok(project, url, 'rls', 'install')
    generated(project, url, NEW_TABLE, 'tags')
    ok(project, url, 'db', 'migrate')
    ok(project, url, 'db', 'rollback', '-y')
    ok(project, url, 'db', 'migrate')
    ok(project, url, 'db', 'check')
    ok(project, url, 'rls', 'status')
    assert denied(api, 'workflow_tags', roles=('anon',)) == {}


def test_reset_leaves_every_table_closed_until_install(supabase):
    """lifecycle.reset drops and rebuilds every table; until `hub rls install` runs again
    (hub db reset runs it next), each is deny-all, not open to Supabase's default grants."""
    url, api = supabase
    with contextlib.closing(connection.open_database(url)) as database:
        lifecycle.prepare(database)
        lifecycle.reset(database)
    assert denied(api, 'workflows') == {}
    assert denied(api, 'organization_members', roles=('anon',)) == {}


def test_a_hand_written_migration_is_closed_too(project, supabase):
    """`hub db new`: a table, a sequence and a trigger function no model knows, deny-all."""
    url, api = supabase
    ok(project, url, 'db', 'migrate')
    ok(project, url, 'rls', 'install')
    path = Path(ok(project, url, 'db', 'new', 'side_notes').stdout.strip())
    text = path.read_text().replace(migrate.NEW_UP, (
        'CREATE TABLE public.side_notes (id serial PRIMARY KEY, body text);\n'
        'CREATE FUNCTION public.side_notes_touch() RETURNS trigger LANGUAGE plpgsql '
        'AS $$ BEGIN RETURN NEW; END $$;\n'))
    text = text.replace(migrate.NEW_DOWN, 'DROP FUNCTION public.side_notes_touch();\n'
                                          'DROP TABLE public.side_notes;\n')
    path.write_text(text)
    ok(project, url, 'db', 'migrate')
    assert denied(api, 'side_notes') == {}
    for role in ('anon', 'authenticated'):
        assert owner_query(url, "SELECT has_sequence_privilege(%s, 'public.side_notes_id_seq', "
                                "'USAGE, SELECT, UPDATE'), has_function_privilege(%s, "
                                "'public.side_notes_touch()', 'EXECUTE')",
                           (role, role)) == [(False, False)]


# -- the sync itself: one text for every state of a database -----------------------------------

def psql(url, sql):
    import subprocess

    result = subprocess.run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-d', url],
                            input=sql, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def catalog_rows(url):
    """The rows of pg_class and pg_policy behind public's tables (xmin: any write shows)."""
    return owner_query(url, """
        SELECT c.relname, c.xmin::text, c.relacl::text FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
        UNION ALL SELECT p.polname || ' ' || p.polrelid::regclass::text, p.xmin::text, NULL
        FROM pg_policy p ORDER BY 1""")


def test_the_sync_writes_nothing_where_nothing_differs(db_url):
    from hub import rls

    with contextlib.closing(connection.open_database(db_url)) as database:
        rls.install(database)
        before = catalog_rows(db_url)
        with database.atomic():
            rls.sync(database, replace=True)
        assert catalog_rows(db_url) == before


HALF_INSTALLED = """
DROP POLICY hub_select ON public.workflows;
DROP POLICY hub_update ON public.organization_members;
REVOKE ALL ON public.ai_agents FROM authenticated;
GRANT TRUNCATE ON public.integrations TO authenticated;
ALTER TABLE public.team_members DISABLE ROW LEVEL SECURITY;
DROP FUNCTION hub_private.co_member_ids() CASCADE;
"""


@pytest.mark.parametrize('state', ['migrated', 'installed', 'half_installed', 'uninstalled'])
def test_rls_install_sql_runs_unchanged_on_any_state(db_url, api_for, state):
    from tests.commands import hub

    from hub import rls

    if state != 'migrated':
        assert hub(db_url, 'rls', 'install').returncode == 0
    if state == 'half_installed':
        psql(db_url, HALF_INSTALLED)
    if state == 'uninstalled':
        assert hub(db_url, 'rls', 'uninstall', '--yes').returncode == 0
    text = hub(db_url, 'rls', 'install', '--sql').stdout
    for _ in range(2):  # and again, unchanged
        psql(db_url, text)
        result = hub(db_url, 'rls', 'status')
        assert result.returncode == 0, result.stdout
    with contextlib.closing(connection.open_database(db_url)) as database:
        assert rls.install(database) == []
    assert api_for(db_url).error('SELECT 1 FROM public.workflows', role='anon') == '42501'


def test_rls_install_sql_changes_the_mode(db_url):
    from tests.commands import hub

    from hub import rls

    assert hub(db_url, 'rls', 'install').returncode == 0
    psql(db_url, hub(db_url, 'rls', 'install', '--sql', '--mode', 'active').stdout)
    with contextlib.closing(connection.open_database(db_url)) as database:
        assert rls.installed_mode(database) == 'active'
        assert rls.install(database) == []
    assert hub(db_url, 'rls', 'status').returncode == 0


def test_prisma_names_rls_install_when_only_policies_differ(db_url):
    from tests.commands import hub

    assert hub(db_url, 'rls', 'install').returncode == 0
    psql(db_url, 'DROP POLICY hub_delete ON public.team_members')
    result = hub(db_url, 'db', 'prisma')
    assert result.returncode == 1
    assert 'policy hub_delete (DELETE) is missing' in result.stderr
    assert 'run `hub rls install`, then `hub db check`' in result.stderr
