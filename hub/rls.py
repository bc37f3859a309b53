"""Row-level security for the 12 tables: install, uninstall, inspect and verify tenant isolation.

    >>> import hub.db, hub.rls
    >>> from hub.models import Workflow
    >>> database = hub.db.bind(hub.db.open_database(hub.db.resolve_url()))
    >>> hub.rls.install(database)              # what it did; [] when already installed
    [...]
    >>> with hub.rls.as_user(database, 'cl9x0user000000000000000'):
    ...     names = [w.name for w in Workflow.select()]   # only that user's organizations
    >>> hub.rls.status(database)['complete']
    True
    >>> report = hub.rls.verify(database)      # the isolation matrix, rolled back
    >>> len(report['cases']), report['leaks']
    (..., [])

Identity is the PostgREST/Supabase convention: role `authenticated` plus
`request.jwt.claims = {"sub": "<users.id>", "role": "authenticated"}` (the legacy
`request.jwt.claim.sub` is read too). An optional `organization_id` claim narrows the caller to
that one of their organizations (naming one they are not in shows nothing). A query that shows
one organization should still say `WHERE organization_id = ...`: the policy then only checks
membership, and PostgreSQL can stream from the (organization_id, ...) indexes in order, which
no policy that admits several organizations can make it do.

Every policy asks one SECURITY DEFINER helper in the schema `hub_private` for the caller's
organizations, as an initPlan (`organization_id = ANY ((SELECT hub_private.org_ids())::text[])`):
evaluated once per statement, then matched against the (organization_id, ...) indexes. The
helper's owner bypasses RLS, so reading organization_members inside it cannot recurse into
organization_members' own policies. Why this shape and not the spec's per-row EXISTS: see
benchmarks/bench_rls.py and the README section on row-level security.

Roles `anon`, `authenticated` and `service_role` and the `auth` schema are created only where
missing (Supabase has them); roles are cluster-wide, so `uninstall` leaves them in place.
"""
import collections
import contextlib
import hashlib
import json

from hub.errors import HubError

HELPER_SCHEMA = 'hub_private'
ROLES = ('anon', 'authenticated', 'service_role')
COMMANDS = ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
#: Marks what install created in schema auth, so uninstall never drops Supabase's own.
AUTH_MARK = 'created by hub rls install (plain PostgreSQL stand-in for Supabase auth)'
#: The claim that narrows a caller to one of their organizations.
ORG_CLAIM = 'organization_id'


class RlsError(HubError):
    """Row-level security cannot be installed or checked as asked."""


# -- the helpers -------------------------------------------------------------------------------

# PL/pgSQL, not SQL: a SECURITY DEFINER or SET search_path function is never inlined, and a
# non-inlined SQL function parses and plans its body on every call (~0.3 ms per statement on
# PostgreSQL 15); PL/pgSQL keeps its plans for the session (~0.04 ms).
#
# The caller's id is read as text: our ids are cuids, so auth.uid()'s ::uuid cast would fail.
# Same sources and order as Supabase's auth.uid(): the legacy per-claim setting, then the JSON.
_CALLER = """
    claims jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
    caller text := coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                            claims ->> 'sub');
    active text := coalesce(nullif(current_setting('request.jwt.claim.%s', true), ''),
                            claims ->> '%s');""" % (ORG_CLAIM, ORG_CLAIM)


def _plpgsql(declare, statements):
    return '\nDECLARE%s\nBEGIN\n%s\nEND\n' % (declare, statements)


# Only accepted memberships count: an invitation (accepted_at NULL) grants nothing, so an
# organization learns nothing of a user it invites, nor the user of it, before they accept.
_MEMBERSHIPS = _plpgsql(_CALLER + '\n    ids text[];', """\
    SELECT coalesce(array_agg(m.organization_id), '{}') INTO ids
    FROM public.organization_members m
    WHERE m.user_id = caller AND m.accepted_at IS NOT NULL
      AND (active IS NULL OR m.organization_id = active)%s;
    RETURN ids;""")

# name -> (returns, SECURITY DEFINER, body, comment)
HELPERS = {
    'uid': ('text', False, _plpgsql(_CALLER, '    RETURN caller;'),
            "the caller's users.id from the JWT claims (text)"),
    'active_org': ('text', False, _plpgsql(_CALLER, '    RETURN active;'),
                   'the optional organization_id claim that narrows the caller to one organization'),
    'org_ids': ('text[]', True, _MEMBERSHIPS % '',
                'the organizations the caller is a member of (narrowed by the organization_id claim)'),
    'admin_org_ids': ('text[]', True, _MEMBERSHIPS % "\n      AND m.role IN ('OWNER', 'ADMIN')",
                      'the organizations where the caller is OWNER or ADMIN'),
    'owner_org_ids': ('text[]', True, _MEMBERSHIPS % "\n      AND m.role = 'OWNER'",
                      'the organizations where the caller is OWNER'),
    'co_member_ids': ('text[]', True, _plpgsql('\n    ids text[];', """\
    SELECT coalesce(array_agg(DISTINCT m.user_id), '{}') INTO ids
    FROM public.organization_members m
    WHERE m.organization_id = ANY (hub_private.org_ids()) AND m.accepted_at IS NOT NULL;
    RETURN ids;"""), 'the users who share an organization with the caller, both having accepted '
                     '(the caller included)'),
}

# Supabase's own definitions, for clients written against them. Our policies do not call them:
# auth.uid() casts to uuid and our ids are not uuids.
AUTH_FUNCTIONS = {
    'uid': ('uuid', """
SELECT nullif(coalesce(current_setting('request.jwt.claim.sub', true),
                       (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')), '')::uuid
"""),
    'jwt': ('jsonb', """
SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                nullif(current_setting('request.jwt.claims', true), ''))::jsonb
"""),
}


# -- the policies ------------------------------------------------------------------------------

def _in(column, helper):
    # The cast keeps `= ANY` an array comparison (without it `ANY ((SELECT ...))` parses as
    # ANY (subquery)), and keeps pg_dump's deparsed text re-parseable.
    return '%s = ANY ((SELECT hub_private.%s())::text[])' % (column, helper)


MINE = _in('organization_id', 'org_ids')
ME = '(SELECT hub_private.uid())'
CREATED_BY_ME = 'created_by = %s' % ME
# A workflow may use a public template or one of its own organization's, never another
# tenant's private one (the subquery also sees only what workflow_templates' policy allows).
TEMPLATE_VISIBLE = ('(template_id IS NULL OR EXISTS (SELECT 1 FROM public.workflow_templates t '
                    'WHERE t.id = template_id AND (t.is_public '
                    'OR t.organization_id = workflows.organization_id)))')
# OWNER manages every membership; ADMIN every one except OWNER rows and the OWNER role.
MANAGE_MEMBERS = "(%s OR (%s AND role <> 'OWNER'))" % (
    _in('organization_id', 'owner_org_ids'), _in('organization_id', 'admin_org_ids'))
MY_MEMBERSHIP = 'user_id = %s' % ME


def _tenant(extra_check=None):
    """Rows of the caller's organizations; created_by on INSERT is the caller."""
    check = MINE if extra_check is None else '%s AND %s' % (MINE, extra_check)
    return {
        'SELECT': (MINE, None),
        'INSERT': (None, '%s AND %s' % (check, CREATED_BY_ME)),
        'UPDATE': (MINE, check),
        'DELETE': (MINE, None),
    }


def _child():
    """Direct organization_id check; composite foreign keys keep the parent in the same tenant."""
    return {'SELECT': (MINE, None), 'INSERT': (None, MINE), 'UPDATE': (MINE, MINE),
            'DELETE': (MINE, None)}


#: table -> command -> (USING, WITH CHECK)
POLICIES = {
    'organizations': {
        'SELECT': (_in('id', 'org_ids'), None),
        # A new organization needs its first OWNER membership, which nobody may add to an
        # organization they are not in: organizations are created by service_role (or an RPC).
        'INSERT': (None, 'false'),
        'UPDATE': (_in('id', 'admin_org_ids'), _in('id', 'admin_org_ids')),
        'DELETE': (_in('id', 'owner_org_ids'), None),
    },
    'users': {
        # A profile shows only to the user and to those they accepted to share an organization
        # with: inviting a user reveals nothing of them (the inviter knows only the id they used).
        'SELECT': ('(id = %s OR %s)' % (ME, _in('id', 'co_member_ids')), None),
        'INSERT': (None, 'id = %s' % ME),
        'UPDATE': ('id = %s' % ME, 'id = %s' % ME),
        # Deleting a user cascades to everything they created in every organization.
        'DELETE': ('false', None),
    },
    'organization_members': {
        # The organization's members see its memberships and invitations; a user sees their own
        # (an invitation included), whatever organization it is in.
        'SELECT': ('(%s OR %s)' % (MINE, MY_MEMBERSHIP), None),
        # OWNER and ADMIN invite; nobody adds an accepted membership for someone else.
        'INSERT': (None, '%s AND accepted_at IS NULL' % MANAGE_MEMBERS),
        # The invited user accepts (sets accepted_at) their own invitation. The trigger
        # organization_members_consent (migration 0002) lets the acceptance change nothing
        # else, lets nobody else accept, and keeps accepted_at once set. WITH CHECKs are OR-ed
        # whichever USING let the row in, so the invitee's branch must not admit a member
        # (an ADMIN promoting their own row to OWNER): it holds only outside org_ids(), which
        # counts memberships accepted before this statement.
        'UPDATE': ('(%s OR (%s AND accepted_at IS NULL))' % (MANAGE_MEMBERS, MY_MEMBERSHIP),
                   '(%s OR (%s AND accepted_at IS NOT NULL AND NOT %s))' % (
                       MANAGE_MEMBERS, MY_MEMBERSHIP, MINE)),
        # Declining an invitation and leaving an organization; the last accepted OWNER cannot
        # leave (trigger organization_members_keep_an_owner).
        'DELETE': ('(%s OR %s)' % (MANAGE_MEMBERS, MY_MEMBERSHIP), None),
    },
    'workflow_templates': {
        # System templates (organization_id NULL) never match MINE: read-only to every tenant.
        'SELECT': ('(is_public OR %s)' % MINE, None),
        'INSERT': (None, '%s AND %s' % (MINE, CREATED_BY_ME)),
        'UPDATE': (MINE, MINE),
        'DELETE': (MINE, None),
    },
    'workflows': _tenant(TEMPLATE_VISIBLE),
    'ai_agents': _tenant(),
    'agent_teams': _tenant(),
    'integrations': _tenant(),
    'team_members': _child(),
    'workflow_executions': _child(),
    'agent_executions': _child(),
    'team_executions': _child(),
}

TABLES = tuple(POLICIES)


def policy_name(command):
    return 'hub_%s' % command.lower()


def expected_policies():
    """{(table, policy name, command as pg_policies.cmd shows it)} for every policy of ours."""
    return {(table, policy_name(cmd), cmd) for table, by_cmd in POLICIES.items() for cmd in by_cmd}


def policy_sql(table, command):
    using, check = POLICIES[table][command]
    sql = 'CREATE POLICY %s ON public.%s AS PERMISSIVE FOR %s TO authenticated' % (
        policy_name(command), table, command)
    if using is not None:
        sql += '\n    USING (%s)' % using
    if check is not None:
        sql += '\n    WITH CHECK (%s)' % check
    return sql


def _fingerprint(sql):
    # Stored as the policy's comment: a later install recognises an up-to-date policy without
    # comparing PostgreSQL's deparsed text, and replaces one written by another version.
    return 'hub rls %s' % hashlib.sha256(sql.encode()).hexdigest()[:16]


#: The helpers' settings. An empty search_path: nothing a caller creates can stand in for what
#: they call. No sequential scan: on a small organization_members (a few pages) the planner
#: prefers one, which costs ~3x the index lookup, once per statement of every tenant query.
HELPER_CONFIG = ['search_path=""', 'enable_seqscan=off']


def helper_sql(name):
    returns, definer, body, _ = HELPERS[name]
    return ('CREATE OR REPLACE FUNCTION %s.%s() RETURNS %s LANGUAGE plpgsql STABLE%s '
            "SET search_path = '' SET enable_seqscan = off AS $hub$%s$hub$" % (
                HELPER_SCHEMA, name, returns, ' SECURITY DEFINER' if definer else '', body))


# -- reading the catalog -----------------------------------------------------------------------

def _one(db, sql, params=()):
    row = db.execute_sql(sql, params).fetchone()
    return row[0] if row else None


def _rows(db, sql, params=()):
    return db.execute_sql(sql, params).fetchall()


def _missing_tables(db):
    return [t for t in TABLES if _one(db, 'SELECT to_regclass(%s)', ('public.%s' % t,)) is None]


def _live_policies(db):
    """{(table, name): (cmd, roles, using, with check, comment, permissive)} in schema public."""
    rows = _rows(db, """
        SELECT c.relname, p.polname,
               CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                             WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
               ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END
                     FROM unnest(p.polroles) r),
               pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
               obj_description(p.oid, 'pg_policy'), p.polpermissive
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public'""")
    return {(t, name): rest for t, name, *rest in rows}


def _function(db, schema, name):
    """(security definer, config, source, comment) of schema.name(), or None."""
    row = db.execute_sql("""
        SELECT p.prosecdef, p.proconfig, p.prosrc, obj_description(p.oid, 'pg_proc')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = %s AND p.proname = %s AND p.pronargs = 0""", (schema, name)).fetchone()
    return row


def _schema_comment(db, schema):
    return _one(db, """SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace
                       WHERE nspname = %s""", (schema,))


def _schema_exists(db, schema):
    return bool(_one(db, 'SELECT count(*) FROM pg_namespace WHERE nspname = %s', (schema,)))


def _role(db, name):
    """(exists, bypassrls)"""
    row = db.execute_sql('SELECT rolbypassrls FROM pg_roles WHERE rolname = %s', (name,)).fetchone()
    return (row is not None, bool(row and row[0]))


def _has_table_privilege(db, role, table, privilege):
    return bool(_one(db, 'SELECT has_table_privilege(%s, %s, %s)',
                     (role, 'public.%s' % table, privilege)))


def _grants_needed():
    """[(role, table, privilege)] that the policies need to be reachable at all."""
    return [(role, table, privilege) for table in TABLES
            for role in ('authenticated', 'service_role') for privilege in COMMANDS]


def installed(db):
    """True when any policy of ours exists (hub.schema.check then compares them all)."""
    live = _live_policies(db)
    return any((table, name) in live for table, name, _ in expected_policies())


# -- install / uninstall -----------------------------------------------------------------------

def install(db):
    """Create what is missing (roles, auth, helpers, grants, policies) in one transaction.

    Idempotent: returns the list of actions taken, [] when everything was already in place.
    """
    missing = _missing_tables(db)
    if missing:
        raise RlsError('cannot install row-level security: table(s) %s missing; run `hub db '
                       'migrate` first' % ', '.join(missing))
    actions = []
    with db.atomic():
        actions += _install_roles(db)
        actions += _install_auth(db)
        actions += _install_helpers(db)
        actions += _install_grants(db)
        actions += _install_policies(db)
    return actions


def _install_roles(db):
    actions = []
    for role in ROLES:
        exists, bypass = _role(db, role)
        if not exists:
            attrs = 'NOLOGIN NOINHERIT' + (' BYPASSRLS' if role == 'service_role' else '')
            # Roles are cluster-wide: another database's install may create the same role at the
            # same moment, which is fine.
            db.execute_sql("""
                DO $hub$ BEGIN
                    CREATE ROLE %s %s;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END $hub$""" % (role, attrs))
            actions.append('created role %s' % role)
        elif role == 'service_role' and not bypass:
            db.execute_sql('ALTER ROLE service_role BYPASSRLS')
            actions.append('gave role service_role BYPASSRLS')
    return actions


def _install_auth(db):
    """Supabase's auth.uid()/auth.jwt(), only where missing (never touching Supabase's own)."""
    actions = []
    if not _schema_exists(db, 'auth'):
        db.execute_sql('CREATE SCHEMA auth')
        db.execute_sql("COMMENT ON SCHEMA auth IS '%s'" % AUTH_MARK)
        db.execute_sql('GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role')
        actions.append('created schema auth')
    for name, (returns, body) in AUTH_FUNCTIONS.items():
        if _function(db, 'auth', name) is None:
            db.execute_sql('CREATE FUNCTION auth.%s() RETURNS %s LANGUAGE sql STABLE '
                           'AS $hub$%s$hub$' % (name, returns, body))
            db.execute_sql("COMMENT ON FUNCTION auth.%s() IS '%s'" % (name, AUTH_MARK))
            actions.append('created function auth.%s()' % name)
    return actions


def _install_helpers(db):
    actions = []
    if not _schema_exists(db, HELPER_SCHEMA):
        db.execute_sql('CREATE SCHEMA %s' % HELPER_SCHEMA)
        db.execute_sql("COMMENT ON SCHEMA %s IS 'membership helpers of the hub row-level "
                       "security policies (hub rls install)'" % HELPER_SCHEMA)
        actions.append('created schema %s' % HELPER_SCHEMA)
    # Nobody may create objects here: a function planted in a SECURITY DEFINER helper's
    # schema is the classic escalation.
    db.execute_sql('REVOKE ALL ON SCHEMA %s FROM PUBLIC' % HELPER_SCHEMA)
    for name in HELPERS:
        returns, definer, body, comment = HELPERS[name]
        live = _function(db, HELPER_SCHEMA, name)
        if live is None or live[2] != body or bool(live[0]) != definer \
                or live[1] != HELPER_CONFIG:
            db.execute_sql(helper_sql(name))
            db.execute_sql('COMMENT ON FUNCTION %s.%s() IS %%s' % (HELPER_SCHEMA, name), (comment,))
            actions.append('%s function %s.%s()' % ('created' if live is None else 'replaced',
                                                     HELPER_SCHEMA, name))
        db.execute_sql('REVOKE ALL ON FUNCTION %s.%s() FROM PUBLIC' % (HELPER_SCHEMA, name))
    if not _one(db, "SELECT has_schema_privilege('authenticated', %s, 'USAGE')", (HELPER_SCHEMA,)):
        db.execute_sql('GRANT USAGE ON SCHEMA %s TO authenticated, service_role' % HELPER_SCHEMA)
        actions.append('granted usage on schema %s to authenticated' % HELPER_SCHEMA)
    ungranted = ['%s.%s()' % (HELPER_SCHEMA, name) for name in HELPERS if not _one(
        db, "SELECT has_function_privilege('authenticated', %s, 'EXECUTE')",
        ('%s.%s()' % (HELPER_SCHEMA, name),))]
    if ungranted:
        db.execute_sql('GRANT EXECUTE ON FUNCTION %s TO authenticated, service_role'
                       % ', '.join(ungranted))
        actions.append('granted execute on %s to authenticated, service_role'
                       % ', '.join(ungranted))
    return actions


def _install_grants(db):
    actions = []
    if not _one(db, "SELECT has_schema_privilege('authenticated', 'public', 'USAGE')") \
            or not _one(db, "SELECT has_schema_privilege('service_role', 'public', 'USAGE')"):
        db.execute_sql('GRANT USAGE ON SCHEMA public TO authenticated, service_role')
        actions.append('granted usage on schema public to authenticated, service_role')
    missing = collections.OrderedDict()
    for role, table, privilege in _grants_needed():
        if not _has_table_privilege(db, role, table, privilege):
            missing.setdefault((role, table), []).append(privilege)
    for (role, table), privileges in missing.items():
        db.execute_sql('GRANT %s ON public.%s TO %s' % (', '.join(privileges), table, role))
        actions.append('granted %s on %s to %s' % (', '.join(privileges), table, role))
    return actions


def _install_policies(db):
    actions = []
    live = _live_policies(db)
    for table in TABLES:
        enabled = _one(db, "SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass",
                       ('public.%s' % table,))
        if not enabled:
            db.execute_sql('ALTER TABLE public.%s ENABLE ROW LEVEL SECURITY' % table)
            actions.append('enabled row-level security on %s' % table)
        for command in POLICIES[table]:
            name = policy_name(command)
            sql = policy_sql(table, command)
            mark = _fingerprint(sql)
            current = live.get((table, name))
            if current is not None and current[4] == mark:
                continue
            if current is not None:
                db.execute_sql('DROP POLICY %s ON public.%s' % (name, table))
            db.execute_sql(sql)
            db.execute_sql("COMMENT ON POLICY %s ON public.%s IS '%s'" % (name, table, mark))
            actions.append('%s policy %s on %s (%s)' % (
                'created' if current is None else 'replaced', name, table, command))
    return actions


def uninstall(db):
    """Remove our policies, helpers and auth stand-in; disable RLS; revoke table access.

    A no-op on a database where nothing is installed (hub.migrate.reset calls it first).
    Roles stay: they are cluster-wide and other databases may use them.
    """
    actions = []
    with db.atomic():
        live = _live_policies(db)
        for table, name, _ in sorted(expected_policies()):
            if (table, name) in live:
                db.execute_sql('DROP POLICY %s ON public.%s' % (name, table))
                actions.append('dropped policy %s on %s' % (name, table))
        for table in TABLES:
            if _one(db, 'SELECT to_regclass(%s)', ('public.%s' % table,)) is None:
                continue
            enabled, forced = _rows(db, 'SELECT relrowsecurity, relforcerowsecurity FROM pg_class '
                                        'WHERE oid = %s::regclass', ('public.%s' % table,))[0]
            if enabled or forced:
                db.execute_sql('ALTER TABLE public.%s DISABLE ROW LEVEL SECURITY, '
                               'NO FORCE ROW LEVEL SECURITY' % table)
                actions.append('disabled row-level security on %s' % table)
            # With RLS off, any grant to these roles would show every tenant's rows.
            for role in ('anon', 'authenticated'):
                if _role(db, role)[0] and any(_has_table_privilege(db, role, table, p)
                                              for p in COMMANDS):
                    db.execute_sql('REVOKE ALL ON public.%s FROM %s' % (table, role))
                    actions.append('revoked %s access to %s' % (role, table))
        if _schema_exists(db, HELPER_SCHEMA):
            db.execute_sql('DROP SCHEMA %s CASCADE' % HELPER_SCHEMA)
            actions.append('dropped schema %s' % HELPER_SCHEMA)
        actions += _uninstall_auth(db)
    return actions


def _uninstall_auth(db):
    from peewee import DatabaseError

    actions = []
    for name in AUTH_FUNCTIONS:
        live = _function(db, 'auth', name)
        if live is not None and live[3] == AUTH_MARK:
            try:
                with db.atomic():
                    db.execute_sql('DROP FUNCTION auth.%s()' % name)
                actions.append('dropped function auth.%s()' % name)
            except DatabaseError:
                pass  # something of the user's (a policy, a view) uses it: keep it
    if _schema_comment(db, 'auth') == AUTH_MARK and not _one(db, """
            SELECT count(*) FROM pg_depend d JOIN pg_namespace n ON n.oid = d.refobjid
            WHERE d.refclassid = 'pg_namespace'::regclass AND n.nspname = 'auth'"""):
        db.execute_sql('DROP SCHEMA auth')
        actions.append('dropped schema auth')
    return actions


# -- status ------------------------------------------------------------------------------------

def status(db):
    """What is installed, per table and overall, and what is missing.

    {'complete': bool, 'missing': [str], 'tables': [{'table', 'rls_enabled', 'rls_forced',
    'policies': {cmd: [names]}, 'missing': [str], 'extra': [str]}]}
    """
    from hub.schema import live_tables

    missing = []
    for role in ROLES:
        exists, bypass = _role(db, role)
        if not exists:
            missing.append('role %s does not exist' % role)
        elif role == 'service_role' and not bypass:
            missing.append('role service_role lacks BYPASSRLS')
    for name in AUTH_FUNCTIONS:
        if _function(db, 'auth', name) is None:
            missing.append('function auth.%s() is missing' % name)
    for name, (_, definer, body, _) in HELPERS.items():
        live = _function(db, HELPER_SCHEMA, name)
        if live is None:
            missing.append('helper %s.%s() is missing' % (HELPER_SCHEMA, name))
            continue
        if bool(live[0]) != definer:
            missing.append('helper %s.%s() should %sbe SECURITY DEFINER'
                           % (HELPER_SCHEMA, name, '' if definer else 'not '))
        if live[1] != HELPER_CONFIG:
            missing.append("helper %s.%s() does not SET %s" % (HELPER_SCHEMA, name,
                                                               ', '.join(HELPER_CONFIG)))
        if live[2] != body:
            missing.append('helper %s.%s() differs from hub.rls (run `hub rls install`)'
                           % (HELPER_SCHEMA, name))
    live = _live_policies(db)
    tables = []
    for table in live_tables(db):
        entry = {'table': table, 'rls_enabled': False, 'rls_forced': False,
                 'policies': {cmd: [] for cmd in COMMANDS}, 'missing': [], 'extra': []}
        entry['rls_enabled'], entry['rls_forced'] = _rows(
            db, 'SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass',
            ('public.%s' % table,))[0]
        for (t, name), (cmd, roles, _, _, comment, permissive) in sorted(live.items()):
            if t != table:
                continue
            entry['policies'].setdefault(cmd, []).append(name)
            if table not in POLICIES or POLICIES[table].get(cmd) is None \
                    or name != policy_name(cmd):
                entry['extra'].append('%s (%s, to %s)' % (name, cmd, ', '.join(roles)))
                if permissive:
                    # OR-ed with ours: it can only widen what a caller sees or changes.
                    entry['missing'].append('permissive policy %s is not from hub.rls and widens '
                                            'access; drop it or make it RESTRICTIVE' % name)
            elif comment != _fingerprint(policy_sql(table, cmd)):
                entry['missing'].append('policy %s differs from hub.rls (run `hub rls install`)'
                                        % name)
        if table not in POLICIES:
            entry['missing'].append('no policies are defined for this table in hub.rls')
        else:
            if not entry['rls_enabled']:
                entry['missing'].append('row-level security is disabled')
            for cmd in POLICIES[table]:
                if (table, policy_name(cmd)) not in live:
                    entry['missing'].append('policy %s (%s) is missing' % (policy_name(cmd), cmd))
            for role, t, privilege in _grants_needed():
                if t == table and _role(db, role)[0] \
                        and not _has_table_privilege(db, role, table, privilege):
                    entry['missing'].append('%s lacks %s' % (role, privilege))
        tables.append(entry)
    for table in _missing_tables(db):
        missing.append('table %s is missing (run `hub db migrate`)' % table)
    complete = not missing and all(not t['missing'] for t in tables)
    return {'complete': complete, 'missing': missing, 'tables': tables}


# -- acting as a caller ------------------------------------------------------------------------

@contextlib.contextmanager
def as_role(db, role, claims=None):
    """Act as `role` with `claims` (a dict, or None for none) until the block ends.

    Runs inside a transaction (or a savepoint of the current one): SET LOCAL ROLE and a
    transaction-local request.jwt.claims, both restored on exit; an error in the block rolls
    back to the savepoint, so the outer transaction stays usable.
    """
    with db.atomic():
        before_role, before_claims = db.execute_sql(
            "SELECT current_setting('role'), current_setting('request.jwt.claims', true)"
        ).fetchone()
        try:
            db.execute_sql('SET LOCAL ROLE %s' % _quote(role))
        except Exception as exc:
            cause = str(getattr(exc, '__cause__', None) or exc).strip().splitlines()[0]
            raise RlsError('cannot act as role %s (%s); run `hub rls install`, and grant %s to '
                           'the connecting user if it is not a superuser' % (role, cause, role)) \
                from None
        db.execute_sql("SELECT set_config('request.jwt.claims', %s, true)",
                       (json.dumps(claims) if claims is not None else '',))
        yield db
        db.execute_sql('SET LOCAL ROLE %s' % ('NONE' if before_role == 'none'
                                              else _quote(before_role)))
        db.execute_sql("SELECT set_config('request.jwt.claims', %s, true)", (before_claims or '',))


def _quote(identifier):
    return '"%s"' % identifier.replace('"', '""')


def claims_for(user_id, organization_id=None, role='authenticated'):
    """The JWT claims PostgREST would set for this user (and optional active organization)."""
    claims = {'sub': user_id, 'role': role}
    if organization_id is not None:
        claims[ORG_CLAIM] = organization_id
    return claims


def as_user(db, user_id, organization_id=None):
    """`with as_user(db, users_id):` queries run as that signed-in user, under the policies.

    `organization_id` (optional) narrows the user to that one of their organizations.
    """
    return as_role(db, 'authenticated', claims_for(user_id, organization_id))


def as_anon(db):
    """`with as_anon(db):` queries run as a visitor who is not signed in (sees nothing)."""
    return as_role(db, 'anon', {'role': 'anon'})


def as_service(db):
    """`with as_service(db):` queries run as service_role, which bypasses the policies."""
    return as_role(db, 'service_role', {'role': 'service_role'})


# -- verify ------------------------------------------------------------------------------------

def verify(db):
    """Run the isolation matrix against this database in a transaction that is rolled back.

    Returns {'cases': [Case], 'leaks': [Case], 'failures': [Case], 'tables': [names]}; a leak is
    a case where a caller could read or change what they must not.
    """
    from hub import rls_matrix

    return rls_matrix.run(db)
