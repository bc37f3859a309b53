"""Row-level security for the tables of hub.models: install, uninstall, inspect.

    >>> import hub.connection, hub.rls
    >>> from hub.models import Workflow
    >>> database = hub.connection.bind(hub.connection.open_database(hub.connection.resolve_url()))
    >>> hub.rls.install(database)              # what it did; [] when already installed
    [...]
    >>> with hub.rls.as_user(database, 'cl9x0user000000000000000'):
    ...     names = [w.name for w in Workflow.select()]   # only that user's organizations
    >>> hub.rls.status(database)['complete']
    True

The isolation matrix that checks all this is hub.rls_matrix.verify (`hub rls verify`).

Identity is the PostgREST/Supabase convention: role `authenticated` plus
`request.jwt.claims = {"sub": "<users.id>", "role": "authenticated"}`, trusted as the gateway
set it. The legacy per-claim `request.jwt.claim.sub` is read only when the JSON claims are unset
or empty: a stale session-level setting never overrides the transaction's claims. An optional
`organization_id` claim narrows the caller to that one of their organizations (naming one they
are not in shows nothing). A query that shows one organization should still say
`WHERE organization_id = ...`: the policy then only checks membership, and PostgreSQL can
stream from the (organization_id, ...) indexes in order, which no policy that admits several
organizations can make it do.

`install(db, mode='active')` (`hub rls install --mode active`) scopes the tenant tables to the
organization of the organization_id claim alone, checked against the caller's memberships by
`hub_private.active_org_id()`: no claim, no tenant rows. The scalar policy gives every query the
plan of an explicit `WHERE organization_id = ...` (docs/rls.md, "Install modes").

Every policy asks one SECURITY DEFINER helper in the schema `hub_private` for the caller's
organizations, as an initPlan (`organization_id = ANY ((SELECT hub_private.org_ids())::text[])`):
evaluated once per statement, then matched against the (organization_id, ...) indexes (why
this shape and not a per-row EXISTS: benchmarks/bench_rls.py and docs/benchmarks.md). The
helpers belong to a NOLOGIN role, `hub_rls_definer`, whose only rights are USAGE on the two
schemas and SELECT on organization_members through a policy of its own (USING true), so reading
organization_members inside them cannot recurse into the tenants' policies. They run with
`search_path = pg_catalog, pg_temp` and name every type and object with its schema: an empty
search_path would still resolve type names in pg_temp first, where any caller may create a
domain that runs its own code as the helpers' owner.

`install` also leaves the API roles exactly the privileges the policies are written for,
whatever default privileges the database had (Supabase grants ALL): no TRUNCATE, REFERENCES or
TRIGGER; UPDATE only on columns a tenant may change (never id, organization_id, created_by,
created_at, nor the marketplace's curation columns); nothing at all on the migration history.
docs/rls.md has the whole model and the attacks it answers.

Roles `anon`, `authenticated` and `service_role` and the `auth` schema are created only where
missing (Supabase has them); roles are cluster-wide, so `uninstall` leaves them in place.
"""
import collections
import contextlib
import hashlib
import json

import sys

from hub import audit, sqltext
from hub.catalog import (API_ROLES, COLUMN_PRIVILEGES, PUBLIC, SCHEMA, TABLE_PRIVILEGES,
                         live_column_map, live_column_names, live_function,
                         live_function_owners, live_has_table_privilege, live_policy_map,
                         live_privileges, live_rls, live_role, live_role_attributes,
                         live_schema_comment, live_schema_exists, live_sequences_reachable,
                         live_table_exists)
from hub.errors import RlsError  # noqa: F401  (hub.rls.RlsError, as before)

HELPER_SCHEMA = 'hub_private'
#: Owns the helpers: NOLOGIN, never a superuser, cluster-wide like anon/authenticated.
DEFINER_ROLE = 'hub_rls_definer'
#: Its policy on organization_members: the one table the membership helpers read.
DEFINER_POLICY = 'hub_definer_select'
ROLES = API_ROLES
COMMANDS = ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
#: Marks what install created in schema auth, so uninstall never drops Supabase's own.
AUTH_MARK = 'created by hub rls install (plain PostgreSQL stand-in for Supabase auth)'
#: The claim that narrows a caller to one of their organizations.
ORG_CLAIM = 'organization_id'


# -- the helpers -------------------------------------------------------------------------------

# PL/pgSQL, not SQL: a SECURITY DEFINER or SET search_path function is never inlined, and a
# non-inlined SQL function parses and plans its body on every call (~0.3 ms per statement on
# PostgreSQL 15); PL/pgSQL keeps its plans for the session (~0.04 ms).
#
# The caller's id is read as text: our ids are cuids, so auth.uid()'s ::uuid cast would fail.
# The transaction's JSON claims decide; the legacy per-claim settings count only when there are
# none, so a session-level request.jwt.claim.sub left on a pooled connection cannot stand in
# for the caller the gateway named. Every type and function is schema-qualified (see above).
_CALLER = """
    claims pg_catalog.jsonb := nullif(pg_catalog.current_setting('request.jwt.claims', true),
                                      '')::pg_catalog.jsonb;
    caller pg_catalog.text := CASE WHEN claims IS NULL
        THEN nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), '')
        ELSE claims ->> 'sub' END;
    active pg_catalog.text := CASE WHEN claims IS NULL
        THEN nullif(pg_catalog.current_setting('request.jwt.claim.%s', true), '')
        ELSE claims ->> '%s' END;""" % (ORG_CLAIM, ORG_CLAIM)


# The address the gateway vouches for (GoTrue signs its `email` claim from auth.users, which
# only changes after the new address is confirmed): the one a tenant's own users row may carry.
_EMAIL = """
    claims pg_catalog.jsonb := nullif(pg_catalog.current_setting('request.jwt.claims', true),
                                      '')::pg_catalog.jsonb;
    email pg_catalog.text := CASE WHEN claims IS NULL
        THEN nullif(pg_catalog.current_setting('request.jwt.claim.email', true), '')
        ELSE claims ->> 'email' END;"""


def _plpgsql(declare, statements):
    return '\nDECLARE%s\nBEGIN\n%s\nEND\n' % (declare, statements)


# Only accepted memberships count: an invitation (accepted_at NULL) grants nothing, so an
# organization learns nothing of a user it invites, nor the user of it, before they accept.
_MEMBERSHIPS = _plpgsql(_CALLER + '\n    ids pg_catalog.text[];', """\
    SELECT coalesce(pg_catalog.array_agg(m.organization_id), '{}') INTO ids
    FROM public.organization_members m
    WHERE m.user_id = caller AND m.accepted_at IS NOT NULL
      AND (active IS NULL OR m.organization_id = active)%s;
    RETURN ids;""")

# name -> (returns, SECURITY DEFINER, body, comment)
HELPERS = {
    'uid': ('pg_catalog.text', False, _plpgsql(_CALLER, '    RETURN caller;'),
            "the caller's users.id from the JWT claims (text)"),
    'active_org': ('pg_catalog.text', False, _plpgsql(_CALLER, '    RETURN active;'),
                   'the optional organization_id claim that narrows the caller to one organization'),
    'email': ('pg_catalog.text', False, _plpgsql(_EMAIL, '    RETURN email;'),
              "the caller's e-mail address from the JWT claims (the gateway's, e.g. GoTrue's)"),
    'org_ids': ('pg_catalog.text[]', True, _MEMBERSHIPS % '',
                'the organizations the caller is a member of (narrowed by the organization_id claim)'),
    'admin_org_ids': ('pg_catalog.text[]', True,
                      _MEMBERSHIPS % "\n      AND m.role IN ('OWNER', 'ADMIN')",
                      'the organizations where the caller is OWNER or ADMIN'),
    'owner_org_ids': ('pg_catalog.text[]', True,
                      _MEMBERSHIPS % "\n      AND m.role = 'OWNER'",
                      'the organizations where the caller is OWNER'),
    'active_org_id': ('pg_catalog.text', True, _plpgsql(_CALLER + '\n    org pg_catalog.text;', """\
    SELECT m.organization_id INTO org
    FROM public.organization_members m
    WHERE m.user_id = caller AND m.accepted_at IS NOT NULL AND m.organization_id = active;
    RETURN org;"""), 'the organization named by the organization_id claim if the caller is an '
                     'accepted member of it, else NULL (the policies of `--mode active`)'),
    'co_member_ids': ('pg_catalog.text[]', True, _plpgsql('\n    ids pg_catalog.text[];', """\
    SELECT coalesce(pg_catalog.array_agg(DISTINCT m.user_id), '{}') INTO ids
    FROM public.organization_members m
    WHERE m.organization_id = ANY (hub_private.org_ids()) AND m.accepted_at IS NOT NULL;
    RETURN ids;"""), 'the users who share an organization with the caller, both having accepted '
                     '(the caller included)'),
}

# -- Citus: the same helpers, told how to run there -------------------------------------------
#
# On Citus the policies run on the workers' shards, and a helper reading organization_members (a
# distributed table) from there is a distributed query nested in a shard's: refused unless the
# function allows it. Sequential mode keeps the helpers' reads on one connection per node, so a
# reference table (organizations, users, workflow_templates) may still be written after them in
# the same statement (Citus refuses to modify a reference table after a parallel read).
CITUS_SETTINGS = ['citus.allow_nested_distributed_execution=on',
                  'citus.multi_shard_modify_mode=sequential']

#: The settings through which PostgREST and older gateways name the caller. PostgREST sets them
#: with set_config(), which Citus never sends to the workers; hub_request.pre_request()
#: re-issues them with SET LOCAL, which it does send, and records what it sent in
#: PROPAGATED_SETTING.
IDENTITY_SETTINGS = ('request.jwt.claims', 'request.jwt.claim.sub',
                     'request.jwt.claim.%s' % ORG_CLAIM, 'request.jwt.claim.email')
PROPAGATED_SETTING = 'hub.propagated_claims'
#: The identity settings as one text ('' reads as unset, as in the helpers), in the helpers and
#: pre_request().
IDENTITY_MARK = "pg_catalog.concat_ws(' ', %s)" % ', '.join(
    "pg_catalog.quote_nullable(nullif(pg_catalog.current_setting('%s', true), ''))"
    % name
    for name in IDENTITY_SETTINGS)
NO_IDENTITY = ' '.join(["NULL"] * len(IDENTITY_SETTINGS))

# On Citus a helper that names the caller first checks that the caller's settings went out to
# the workers: a request whose claims were set with set_config() alone would be scoped on the
# coordinator's copy of a reference table and see nobody on the workers' copies, so a write to
# users or organizations would change one copy only. It fails instead, whole (fail closed).
_CITUS_GUARD = """
    IF %(mark)s NOT IN (%(none)s,
            coalesce(pg_catalog.current_setting('%(propagated)s', true), '')) THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = 'the JWT claims of this transaction were set with set_config(), which '
                      'Citus does not send to the workers',
            HINT = 'call hub_request.pre_request() after setting them (PostgREST: '
                   'db-pre-request = hub_request.pre_request)';
    END IF;""" % {'mark': IDENTITY_MARK, 'none': "'%s'" % NO_IDENTITY,
                  'propagated': PROPAGATED_SETTING}


#: PostgREST's `db-pre-request` function (Supabase: `pgrst.db_pre_request`): PostgREST calls it in
#: every request's transaction after it set the role and the claims. It re-issues the identity
#: settings with SET LOCAL under citus.propagate_set_commands = 'local', so they reach the Citus
#: workers; on a single node it changes nothing. SECURITY INVOKER, in a schema of its own that
#: the API roles may use (hub_private is closed to anon, whose requests call it too).
REQUEST_SCHEMA = 'hub_request'
PRE_REQUEST = '%s.pre_request()' % REQUEST_SCHEMA
PRE_REQUEST_BODY = """
BEGIN
    -- From here on Citus sends this transaction's SET LOCAL commands to the workers.
    SET LOCAL citus.propagate_set_commands = 'local';%s
    EXECUTE pg_catalog.format('SET LOCAL %s = %%L', %s);
END
""" % (''.join("""
    IF pg_catalog.current_setting('%(name)s', true) IS NOT NULL THEN
        EXECUTE pg_catalog.format('SET LOCAL %(name)s = %%L',
                                  pg_catalog.current_setting('%(name)s', true));
    END IF;""" % {'name': name} for name in IDENTITY_SETTINGS), PROPAGATED_SETTING, IDENTITY_MARK)
PRE_REQUEST_COMMENT = ("PostgREST's db-pre-request (hub rls install): re-issues the JWT claims "
                       "with SET LOCAL so that Citus sends them to the workers")
#: The roles PostgREST runs requests as: each calls the pre-request function.
PRE_REQUEST_ROLES = ROLES
#: Calls PRE_REQUEST where install made it (as PostgREST does where it is configured), nothing
#: elsewhere: what hub's own callers (as_role, `hub shell --as`, `hub rls verify`) run right after
#: setting the claims, on every target.
SEND_CLAIMS_SQL = ('DO $hub_do$ BEGIN IF pg_catalog.to_regprocedure(%s) IS NOT NULL THEN '
                   'PERFORM %s; END IF; END $hub_do$' % (sqltext.text(PRE_REQUEST), PRE_REQUEST))
PRE_REQUEST_SQL = ('CREATE OR REPLACE FUNCTION %s RETURNS void LANGUAGE plpgsql '
                   'SET search_path = pg_catalog, pg_temp AS $hub$%s$hub$'
                   % (PRE_REQUEST, PRE_REQUEST_BODY))


def pre_request_statements():
    """Create (or replace) schema hub_request and its pre_request(): usable and executable by
    the API roles, nobody may create anything in the schema."""
    return [
        'CREATE SCHEMA IF NOT EXISTS %s' % REQUEST_SCHEMA,
        'REVOKE ALL ON SCHEMA %s FROM PUBLIC' % REQUEST_SCHEMA,
        'GRANT USAGE ON SCHEMA %s TO %s' % (REQUEST_SCHEMA, ', '.join(PRE_REQUEST_ROLES)),
        PRE_REQUEST_SQL,
        'COMMENT ON FUNCTION %s IS %s' % (PRE_REQUEST, sqltext.text(PRE_REQUEST_COMMENT)),
        'REVOKE ALL ON FUNCTION %s FROM PUBLIC' % PRE_REQUEST,
        'GRANT EXECUTE ON FUNCTION %s TO %s' % (PRE_REQUEST, ', '.join(PRE_REQUEST_ROLES))]


def helper_body(name, citus=False):
    """The body of helper `name` as installed on a single node, or on Citus (citus=True): the
    same, after a check that the caller's claims reached the workers when it reads them."""
    body = HELPERS[name][2]
    if not citus or 'request.jwt' not in body:
        return body
    return body.replace('\nBEGIN\n', '\nBEGIN%s\n' % _CITUS_GUARD, 1)


def helper_config(citus=False):
    """The settings every helper runs with, on a single node or on Citus."""
    return HELPER_CONFIG + (CITUS_SETTINGS if citus else [])


#: The roles install grants EXECUTE on the helpers: the policies are written for authenticated;
#: service_role (which bypasses them) may call the helpers as the platform's code does.
HELPER_ROLES = ('authenticated', 'service_role')

#: The documented RPCs: functions the API roles may execute that are not policy helpers,
#: 'schema.name(argument types)' -> (the roles that may execute it, what it is for). The catalog
#: audit (hub.audit) refuses EXECUTE on any other SECURITY DEFINER function for the API roles.
#: Each is created by a migration (and so exists whenever row-level security can be installed);
#: `install` grants EXECUTE to exactly these roles, `status` names any other holder.
RPCS = {
    'public.create_organization(text, text)': (
        ('authenticated',),
        'creates an organization and makes the caller (the JWT sub) its accepted OWNER; returns '
        "its id (supabase-js: supabase.rpc('create_organization', { name, slug }); migration "
        '0008)'),
}
#: The NOLOGIN role that owns each SECURITY DEFINER RPC (migration 0008): only the rights its
#: function needs (insert an organization and its OWNER membership), no SUPERUSER, BYPASSRLS,
#: CREATEROLE nor CREATEDB.
RPC_OWNERS = {'public.create_organization(text, text)': 'hub_org_creator'}

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
#: MINE under `install(mode='active')`: one scalar, the organization of the organization_id
#: claim when the caller is an accepted member of it (else NULL: no row). The planner sees
#: `organization_id = $1` and streams from the (organization_id, ...) indexes in order, as for
#: an app's own filter; an array never lets it (docs/rls.md, benchmarks/bench_fleet.py).
ACTIVE = 'organization_id = (SELECT hub_private.active_org_id())'
#: How the tenant tables scope a caller. `members`: every organization the caller belongs to
#: (narrowed by the optional organization_id claim). `active`: only the organization of the
#: organization_id claim; no claim, no tenant rows. Either way organizations, users and
#: organization_members keep the membership rules (an app lists the caller's organizations to
#: choose the active one, and invitations are accepted outside it).
MODES = ('members', 'active')
DEFAULT_MODE = 'members'
MEMBERSHIP_TABLES = ('organizations', 'users', 'organization_members')
ME = '(SELECT hub_private.uid())'
CREATED_BY_ME = 'created_by = %s' % ME


def template_visible(table, column):
    """`column` of `table` names no template, a public one, or one of the row's organization's,
    never another tenant's private one (the subquery also sees only what workflow_templates'
    policy allows). Every tenant and child table's reference to workflow_templates gets it."""
    from hub.models import WorkflowTemplate

    # Unqualified, the column would mean the template's own if workflow_templates had one.
    outer = '%s.%s' % (table, column) if column in WorkflowTemplate._meta.columns else column
    return ('(%s IS NULL OR EXISTS (SELECT 1 FROM public.workflow_templates t '
            'WHERE t.id = %s AND (t.is_public OR t.organization_id = %s.organization_id)))'
            % (outer, outer, table))


def template_kept_or_visible(table, column):
    """template_visible on UPDATE, checked only when `column` changes: a row keeping its
    reference stays writable when the template's owner makes it private later (else that owner
    would freeze every other tenant's rows made from it). id and organization_id never change,
    so the same id names the row as it was."""
    return '(%s OR %s(%s.id, %s.%s))' % (template_visible(table, column),
                                          kept_function(table, column), table, table, column)


def kept_function(table, column):
    """The helper that tells whether `table`'s row still names the same `column` value."""
    return '%s.%s_keeps_%s' % (HELPER_SCHEMA, table, column)


#: The template check of the direct (Citus) shape: a policy there may not hold the sub-select of
#: template_visible, so a function asks it (SECURITY INVOKER: it reads as the caller, under
#: workflow_templates' own policies, as the sub-select did).
TEMPLATE_VISIBLE_FUNCTION = '%s.template_visible' % HELPER_SCHEMA
_TEMPLATE_VISIBLE_BODY = """
BEGIN
    RETURN named IS NULL OR EXISTS (
        SELECT 1 FROM public.workflow_templates t
        WHERE t.id OPERATOR(pg_catalog.=) named
          AND (t.is_public OR t.organization_id OPERATOR(pg_catalog.=) row_organization));
END
"""


def _citus_clause(citus):
    """The SET clauses of CITUS_SETTINGS for a CREATE FUNCTION on Citus; '' elsewhere."""
    return ''.join(' SET %s = %s' % tuple(setting.split('=', 1))
                   for setting in CITUS_SETTINGS if citus)


def _settings_clause(citus):
    return ' SET search_path = pg_catalog, pg_temp' + _citus_clause(citus)


def kept_functions(citus=False):
    """{qualified name: CREATE statement} of every kept_function the policies call, and of the
    template check of the direct shape (TEMPLATE_VISIBLE_FUNCTION); on Citus (citus=True) they
    run with the helpers' Citus settings (a query from a shard's policy is a nested one).

    A policy on a table may not read that same table (PostgreSQL refuses it as infinite
    recursion), so the row before the statement is read by a function: SECURITY INVOKER (it
    reads as the caller, under the caller's policies: nothing the caller could not read), STABLE
    (it sees the statement's snapshot, the row as it was), PL/pgSQL (never inlined into the
    policy), pinned search_path and qualified names like the helpers.
    """
    from hub import models
    from hub.models import WorkflowTemplate

    out = {}
    for model in models.MODELS:
        table = model._meta.table_name
        if kind(model) not in (TENANT, CHILD):
            continue
        for field in model._meta.sorted_fields:
            if getattr(field, 'rel_model', None) is not WorkflowTemplate:
                continue
            name = kept_function(table, field.column_name)
            out[name] = (
                'CREATE OR REPLACE FUNCTION %s(row_id pg_catalog.text, kept pg_catalog.text) '
                'RETURNS pg_catalog.bool LANGUAGE plpgsql STABLE%s AS $hub$%s$hub$' % (
                    name, _settings_clause(citus), _kept_body(table, field.column_name)))
    out[TEMPLATE_VISIBLE_FUNCTION] = (
        'CREATE OR REPLACE FUNCTION %s(named pg_catalog.text, row_organization '
        'pg_catalog.text) RETURNS pg_catalog.bool LANGUAGE plpgsql STABLE%s AS $hub$%s$hub$' % (
            TEMPLATE_VISIBLE_FUNCTION, _settings_clause(citus), _TEMPLATE_VISIBLE_BODY))
    return out


def _kept_body(table, column):
    return """
BEGIN
    RETURN EXISTS (SELECT 1 FROM public.%s o WHERE o.id OPERATOR(pg_catalog.=) row_id
                   AND o.%s OPERATOR(pg_catalog.=) kept);
END
""" % (table, column)


def _kept_statements(citus=False):
    """Create (or replace) the kept functions; EXECUTE for the roles the policies run as."""
    statements = []
    for name, sql in kept_functions(citus).items():
        signature = '%s(pg_catalog.text, pg_catalog.text)' % name
        statements += [sql, 'REVOKE ALL ON FUNCTION %s FROM PUBLIC, anon' % signature,
                       'GRANT EXECUTE ON FUNCTION %s TO authenticated, service_role' % signature]
    return statements


TEMPLATE_VISIBLE = template_visible('workflows', 'template_id')
# OWNER manages every membership; ADMIN every one except OWNER rows and the OWNER role.
MANAGE_MEMBERS = "(%s OR (%s AND role <> 'OWNER'))" % (
    _in('organization_id', 'owner_org_ids'), _in('organization_id', 'admin_org_ids'))
MY_MEMBERSHIP = 'user_id = %s' % ME


def _checked(extra_checks):
    return ' AND '.join((MINE,) + tuple(extra_checks))


def _tenant(insert_checks=(), update_checks=()):
    """Rows of the caller's organizations; created_by on INSERT is the caller."""
    return {
        'SELECT': (MINE, None),
        'INSERT': (None, '%s AND %s' % (_checked(insert_checks), CREATED_BY_ME)),
        'UPDATE': (MINE, _checked(update_checks)),
        'DELETE': (MINE, None),
    }


def _child(insert_checks=(), update_checks=()):
    """Direct organization_id check; composite foreign keys keep the parent in the same tenant."""
    return {'SELECT': (MINE, None), 'INSERT': (None, _checked(insert_checks)),
            'UPDATE': (MINE, _checked(update_checks)), 'DELETE': (MINE, None)}


#: The tables whose policies are not one of the two shapes the models imply (kind()), and why:
#: table -> command -> (USING, WITH CHECK). Every other table's policies derive from its model.
SPECIAL = {
    # The tenant itself: its rows are matched on id, and the rights differ by member role.
    'organizations': {
        'SELECT': (_in('id', 'org_ids'), None),
        # A new organization needs its first OWNER membership, which nobody may add to an
        # organization they are not in: organizations are created by service_role (or an RPC).
        'INSERT': (None, 'false'),
        'UPDATE': (_in('id', 'admin_org_ids'), _in('id', 'admin_org_ids')),
        'DELETE': (_in('id', 'owner_org_ids'), None),
    },
    # Not in any one organization: a user shares their profile with co-members only.
    'users': {
        # A profile shows only to the user and to those they accepted to share an organization
        # with: inviting a user reveals nothing of them (the inviter knows only the id they used).
        'SELECT': ('(id = %s OR %s)' % (ME, _in('id', 'co_member_ids')), None),
        # Own row only, with the address of the caller's token: an e-mail is an identity the
        # auth side owns (GoTrue's auth.users on Supabase), never one a tenant asserts. The check
        # runs before the unique index, so a taken address answers 42501 like any other.
        'INSERT': (None, 'id = %s AND email = (SELECT hub_private.email())' % ME),
        # email is not among the columns a tenant may UPDATE (IMMUTABLE_COLUMNS).
        'UPDATE': ('id = %s' % ME, 'id = %s' % ME),
        # Deleting a user cascades to everything they created in every organization.
        'DELETE': ('false', None),
    },
    # What the helpers read: managed by role (OWNER, ADMIN), and the invitee's own consent.
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
    # organization_id may be NULL (the marketplace's system templates, readable when public).
    'workflow_templates': {
        # System templates (organization_id NULL) never match MINE: read-only to every tenant.
        'SELECT': ('(is_public OR %s)' % MINE, None),
        'INSERT': (None, '%s AND %s' % (MINE, CREATED_BY_ME)),
        'UPDATE': (MINE, MINE),
        'DELETE': (MINE, None),
    },
}

#: The kinds kind() gives: the two derived shapes, and SPECIAL.
TENANT, CHILD, SPECIAL_KIND = 'tenant', 'child', 'special'


def _column_field(model, column):
    return next((f for f in model._meta.sorted_fields if f.column_name == column), None)


def kind(model):
    """'special' (in SPECIAL), 'tenant', 'child', or None (no policies: hub rls status says so).

    From the model's shape: organization_id NOT NULL and created_by make a tenant table (its
    rows belong to an organization and were made by a user); organization_id NOT NULL without
    created_by a child table (a row of a tenant's parent, reached through a composite tenant
    key such as team_members.(organization_id, team_id)).
    """
    if model._meta.table_name in SPECIAL:
        return SPECIAL_KIND
    organization = _column_field(model, 'organization_id')
    if organization is None or organization.null:
        return None
    return TENANT if _column_field(model, 'created_by') is not None else CHILD


def _extra_checks(model):
    """(INSERT, UPDATE) WITH CHECKs a reference adds: a template a tenant's row names must be
    visible to it when the row names it, on INSERT or by an UPDATE that changes it."""
    from hub.models import WorkflowTemplate

    table = model._meta.table_name
    columns = [f.column_name for f in model._meta.sorted_fields
               if getattr(f, 'rel_model', None) is WorkflowTemplate]
    return (tuple(template_visible(table, c) for c in columns),
            tuple(template_kept_or_visible(table, c) for c in columns))


def model_policies(model):
    """command -> (USING, WITH CHECK) of `model`'s table, or None for a table without a kind."""
    shape = kind(model)
    if shape == SPECIAL_KIND:
        return SPECIAL[model._meta.table_name]
    if shape == TENANT:
        return _tenant(*_extra_checks(model))
    if shape == CHILD:
        return _child(*_extra_checks(model))
    return None


def policies():
    """table -> command -> (USING, WITH CHECK) for every model with a kind, in hub.models order."""
    from hub import models

    out = {}
    for model in models.MODELS:
        by_command = model_policies(model)
        if by_command is not None:
            out[model._meta.table_name] = by_command
    return out


def policy_tables():
    """The tables that get policies, in hub.models order (parents first)."""
    return tuple(policies())


def policy_name(command):
    return 'hub_%s' % command.lower()


def expected_policies():
    """{(table, policy name, command as pg_policies.cmd shows it)} for every policy of ours."""
    return {(table, policy_name(cmd), cmd) for table, by_cmd in policies().items()
            for cmd in by_cmd} | {('organization_members', DEFINER_POLICY, 'SELECT')}


#: The helpers' owner reads every membership: that is the helpers' whole job. No other role can
#: use this policy (nobody logs in as the definer), and it keeps the tenants' policies on
#: organization_members out of the helpers' own reads (no recursion).
DEFINER_POLICY_SQL = ('CREATE POLICY %s ON public.organization_members AS PERMISSIVE FOR SELECT '
                      'TO %s USING (true)' % (DEFINER_POLICY, DEFINER_ROLE))


def _scoped(predicate, table, mode):
    """A policy predicate as `mode` installs it: MINE becomes ACTIVE on the tenant tables."""
    if predicate is None or mode == 'members' or table in MEMBERSHIP_TABLES:
        return predicate
    return predicate.replace(MINE, ACTIVE)


#: The helpers a policy asks, each once per statement on a single node (an initPlan).
_ARRAY_HELPERS = ('org_ids', 'admin_org_ids', 'owner_org_ids', 'co_member_ids')
_SCALAR_HELPERS = ('uid', 'email', 'active_org_id')


def _direct(predicate, table):
    """`predicate` in the shape Citus accepts: no sub-select, so each helper is called directly
    (`organization_id = ANY (hub_private.org_ids())`, `created_by = hub_private.uid()`) and a
    reference to a template is checked by hub_private.template_visible(). Citus refuses a policy
    with a sub-select on a distributed or reference table; on a single node this shape is much
    slower (a helper that is not an index condition runs per row: docs/benchmarks.md), so
    there the initPlan shape stays."""
    if predicate is None:
        return None
    from hub.models import WorkflowTemplate, model_for

    model = model_for(table)
    for field in model._meta.sorted_fields if model is not None else ():
        if getattr(field, 'rel_model', None) is WorkflowTemplate:
            column = field.column_name
            outer = '%s.%s' % (table, column) if column in WorkflowTemplate._meta.columns \
                else column
            predicate = predicate.replace(template_visible(table, column), '%s(%s, %s.%s)' % (
                TEMPLATE_VISIBLE_FUNCTION, outer, table, 'organization_id'))
    for name in _ARRAY_HELPERS:
        predicate = predicate.replace('ANY ((SELECT %s.%s())::text[])' % (HELPER_SCHEMA, name),
                                      'ANY (%s.%s())' % (HELPER_SCHEMA, name))
    for name in _SCALAR_HELPERS:
        predicate = predicate.replace('(SELECT %s.%s())' % (HELPER_SCHEMA, name),
                                      '%s.%s()' % (HELPER_SCHEMA, name))
    assert 'SELECT' not in predicate.upper(), predicate
    return predicate


def policy_sql(table, command, mode=DEFAULT_MODE, citus=False):
    """CREATE POLICY for `table` and `command` in `mode`, in the shape of the target: the
    initPlan shape on a single node, the direct shape on Citus (citus=True, see _direct)."""
    using, check = (_scoped(p, table, mode) for p in policies()[table][command])
    if citus:
        using, check = _direct(using, table), _direct(check, table)
        if command == 'INSERT' and table in CURATION_COLUMNS and check is not None:
            check = '%s AND %s' % (check, curation_defaults(table))
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


#: The helpers' settings. pg_catalog first and pg_temp explicitly last: left out (or with an
#: empty search_path) pg_temp is searched FIRST for types and relations, so a caller's
#: `CREATE DOMAIN pg_temp.text ... CHECK (pg_temp.evil(VALUE))` would run as the helpers' owner.
#: No sequential scan: on a small organization_members (a few pages) the planner
#: prefers one, which costs ~3x the index lookup, once per statement of every tenant query.
HELPER_CONFIG = ['search_path=pg_catalog, pg_temp', 'enable_seqscan=off']


def helper_sql(name, citus=False):
    """CREATE OR REPLACE of helper `name`, as a single node or Citus (citus=True) runs it."""
    returns, definer, _, _ = HELPERS[name]
    return ('CREATE OR REPLACE FUNCTION %s.%s() RETURNS %s LANGUAGE plpgsql STABLE%s '
            "SET search_path = pg_catalog, pg_temp SET enable_seqscan = off%s AS $hub$%s$hub$" % (
                HELPER_SCHEMA, name, returns, ' SECURITY DEFINER' if definer else '',
                _citus_clause(citus),
                helper_body(name, citus)))


# -- the privileges the policies are written for ---------------------------------------------

#: Columns that say who and where a row belongs and when it began: never changed by a tenant
#: (a rewritten created_by hands the row to another tenant's user, whose deletion cascades here).
IDENTITY_COLUMNS = ('id', 'organization_id', 'created_by', 'created_at')
#: More per table: a membership's user (rewriting it would enrol someone without their consent);
#: a user's e-mail (the auth side's: `hub import --link-users` matches it, and a tenant's UPDATE
#: of it would squat another's address and, by its unique index, tell whether one is taken).
IMMUTABLE_COLUMNS = {'organization_members': ('user_id',), 'users': ('email',)}
#: The marketplace's curation, written by the platform (service_role, the owner), never a tenant.
CURATION_COLUMNS = {'workflow_templates': ('is_featured', 'rating', 'usage_count')}
#: Everything a table grant can hold; the API roles must hold exactly what expected_privileges says.


def model_columns(table):
    """The columns of `table` as hub.models declares them (the source of the column grants)."""
    from hub.models import model_for

    model = model_for(table)
    if model is None:
        raise RlsError('no model in hub.models for table %s' % table)
    return [field.column_name for field in model._meta.sorted_fields]


def curation_defaults(table):
    """The INSERT check that `table`'s curation columns hold their defaults (the platform's
    values, never a tenant's): on Citus it replaces the column grants (writable_columns)."""
    from hub.models import model_for

    model = model_for(table)
    out = []
    for column in CURATION_COLUMNS[table]:
        default = model._meta.columns[column].default
        if default is None:
            out.append('%s IS NULL' % column)
        elif isinstance(default, bool):
            out.append('%s = %s' % (column, 'true' if default else 'false'))
        else:
            out.append('%s = %r' % (column, default))
    return '(%s)' % ' AND '.join(out)


def writable_columns(table, command, live=None, citus=False):
    """Columns `authenticated` may set on INSERT or UPDATE of `table` (model order).

    `live` (the table's columns in the database) narrows the list to what exists there. On
    Citus (citus=True) an INSERT may name every column: Citus sends a row to the shards with
    every column, the defaults filled in, so a column grant that leaves the curation columns out
    refuses every tenant INSERT there; the INSERT policy checks their values instead
    (curation_defaults).
    """
    fixed = () if citus and command == 'INSERT' else CURATION_COLUMNS.get(table, ())
    if command == 'UPDATE':
        fixed += IDENTITY_COLUMNS + IMMUTABLE_COLUMNS.get(table, ())
    return [c for c in model_columns(table) if c not in fixed and (live is None or c in live)]


def _history_table():
    from hub.catalog import HISTORY_TABLE

    return HISTORY_TABLE


def expected_privileges(db):
    """{(table, role, privilege, column or None)}: what anon, authenticated, service_role and
    PUBLIC hold on our tables once installed (the migration history: nothing at all)."""
    return _expected(lambda table: live_column_names(db, table), on_citus(db))


def _expected(columns_of, citus=False):
    """expected_privileges with each table's columns from `columns_of(table)`."""
    want = set()
    for table in policy_tables():
        live = columns_of(table)
        for privilege in ('SELECT', 'DELETE'):
            want.add((table, 'authenticated', privilege, None))
        for privilege in ('INSERT', 'UPDATE'):
            columns = writable_columns(table, privilege, live, citus)
            if set(columns) == set(live):  # every column, in whatever order: the table
                want.add((table, 'authenticated', privilege, None))
            else:
                want |= {(table, 'authenticated', privilege, c) for c in columns}
        # service_role is the platform's key: it bypasses the policies, but not the grants.
        for privilege in COMMANDS:
            want.add((table, 'service_role', privilege, None))
    return want


def _describe(entries, columns):
    """['TRUNCATE', 'SELECT', 'UPDATE (created_by, id)'] for a set of (privilege, column);
    a privilege on every one of `columns` reads as the privilege alone."""
    by_privilege = collections.defaultdict(set)
    for privilege, column in entries:
        by_privilege[privilege].add(column)
    out = []
    for privilege in sorted(by_privilege, key=TABLE_PRIVILEGES.index):
        held = by_privilege[privilege]
        if None in held or held >= set(columns):
            out.append(privilege)
        else:
            out.append('%s (%s)' % (privilege, ', '.join(c for c in columns if c in held)))
    return out


def privilege_drift(db):
    """{(table, role): (extra, missing)} for every table of ours and the migration history,
    each a list like ['TRUNCATE', 'UPDATE (created_by)']; only pairs that differ.

    Compared column by column: a table grant of SELECT, INSERT, UPDATE or REFERENCES counts as
    that privilege on every column, so a table grant and the same column grants are equal.
    """
    live = live_column_map(db)  # one query: this runs at every status, install and audit
    tables = [t for t in policy_tables() + (_history_table(),) if t in live]
    want = {w for w in _expected(lambda t: live.get(t, []), on_citus(db)) if w[0] in tables}
    have = live_privileges(db, tables, ROLES)

    def expand(entries):
        """{(table, role): {(privilege, column)}}, a table grant spelled out per column."""
        out = collections.defaultdict(set)
        for t, r, p, c in entries:
            if c is None and p in COLUMN_PRIVILEGES:
                out[t, r] |= {(p, col) for col in live[t]}
            else:
                out[t, r].add((p, c))
        return out

    wanted, held = expand(want), expand(have)
    drift = {}
    for table in tables:
        for role in ROLES + (PUBLIC,):
            w, h = wanted.get((table, role), set()), held.get((table, role), set())
            if w != h:
                drift[table, role] = (_describe(h - w, live[table]),
                                      _describe(w - h, live[table]))
    return drift


# -- reading the catalog -----------------------------------------------------------------------

def _one(db, sql, params=()):
    row = db.execute_sql(sql, params).fetchone()
    return row[0] if row else None


def _missing_tables(db):
    return [t for t in policy_tables() if not live_table_exists(db, t)]


def _definer(db):
    """(login, superuser, bypassrls) of the helpers' owner role, or None if it is missing."""
    return live_role_attributes(db, DEFINER_ROLE)


def _helper_owners(db):
    """{helper name: owner role name} for the helpers that exist."""
    return live_function_owners(db, HELPER_SCHEMA)


def installed(db):
    """True when any policy of ours exists (hub.schema.check then compares them all)."""
    live = live_policy_map(db)
    return any((table, name) in live for table, name, _ in expected_policies())


#: The updated_at trigger function of 0001; 0003 pins its search_path.
TRIGGER_FUNCTION = 'public.hub_touch_updated_at()'
TRIGGER_FUNCTION_CONFIG = ['search_path=pg_catalog, pg_temp']
#: Owns public.hub_keep_an_owner() (migration 0007): NOLOGIN, no SUPERUSER, BYPASSRLS,
#: CREATEROLE nor CREATEDB. Not DEFINER_ROLE: uninstall takes that one's rights back, and the
#: OWNER rule holds with or without row-level security installed (docs/rls.md).
GUARD_ROLE = 'hub_owner_guard'
#: The trigger functions of the migrations -> the role that owns a SECURITY DEFINER one (None:
#: SECURITY INVOKER, owned by whoever migrated). No API role, nor PUBLIC, may execute any of
#: them: CREATE TRIGGER needs EXECUTE, firing does not (migration 0007).
TRIGGER_FUNCTIONS = {
    TRIGGER_FUNCTION: None,
    'public.hub_membership_consent()': None,
    'public.hub_keep_an_owner()': GUARD_ROLE,
    'public.hub_membership_invite()': None,  # migration 0008
}
#: The guard's own policies (migration 0007): read every membership and organization id, lock
#: (never write) memberships. (table, name) -> (command, USING, WITH CHECK) as pg_policies
#: shows them.
GUARD_POLICIES = {
    ('organization_members', 'hub_guard_select'): ('SELECT', 'true', None),
    ('organization_members', 'hub_guard_lock'): ('UPDATE', 'true', 'false'),
    ('organizations', 'hub_guard_select'): ('SELECT', 'true', None),
}
#: create_organization's owner's policies (migration 0008): insert an organization, and its
#: OWNER membership, nothing else. Same shape as GUARD_POLICIES.
CREATOR_POLICIES = {
    ('organizations', 'hub_creator_insert'): ('INSERT', None, 'true'),
    ('organization_members', 'hub_creator_insert'): (
        'INSERT', None, "((role = 'OWNER'::member_role) AND (accepted_at IS NOT NULL))"),
}
#: Every policy a migration makes for a definer role, with the role that alone may use it.
MIGRATION_POLICIES = dict(
    [(key, (GUARD_ROLE,) + spec) for key, spec in GUARD_POLICIES.items()]
    + [(key, ('hub_org_creator',) + spec) for key, spec in CREATOR_POLICIES.items()])


def guard_policies():
    """{(table, policy name, command)} of the migrations' definer roles (MIGRATION_POLICIES),
    as expected_policies() gives install's."""
    return {(table, name, spec[1]) for (table, name), spec in MIGRATION_POLICIES.items()}


def _function_facts(db, signature):
    """(config, SECURITY DEFINER, owner, [PUBLIC and API roles that may EXECUTE it]) of the
    function `signature`, or None when it does not exist."""
    return db.execute_sql("""
        SELECT p.proconfig, p.prosecdef, pg_get_userbyid(p.proowner),
               ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                 ELSE pg_get_userbyid(a.grantee) END
                     FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                     WHERE a.privilege_type = 'EXECUTE' AND (a.grantee = 0
                           OR pg_get_userbyid(a.grantee) = ANY (%s))
                     ORDER BY 1)
        FROM pg_proc p WHERE p.oid = to_regprocedure(%s)""",
        (list(ROLES), signature)).fetchone()


def _powers(db, role):
    """What a definer role `role` must not be able to do and can, as problem lines."""
    attrs = db.execute_sql('SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, '
                           'rolcreatedb FROM pg_roles WHERE rolname = %s', (role,)).fetchone()
    return ['role %s must not %s' % (role, what) for what, bad in zip(
        ('log in', 'be a superuser', 'bypass RLS', 'create roles', 'create databases'),
        attrs or ()) if bad]


def _trigger_function_problems(db):
    problems = []
    for signature, owner in TRIGGER_FUNCTIONS.items():
        row = _function_facts(db, signature)
        if row is None:
            continue
        config, definer, live_owner, executors = row
        if config != TRIGGER_FUNCTION_CONFIG:
            problems.append('function %s does not SET %s (run `hub db migrate`)'
                            % (signature, ', '.join(TRIGGER_FUNCTION_CONFIG)))
        if definer != (owner is not None) or (owner is not None and live_owner != owner):
            problems.append('function %s should be %s (run `hub db migrate`)' % (
                signature, 'SECURITY DEFINER owned by %s, not owned by %s' % (owner, live_owner)
                if owner else 'SECURITY INVOKER'))
        if executors:
            problems.append('function %s is a trigger function that %s may execute, and so '
                            'attach to a table of their own (run `hub rls install`)'
                            % (signature, ', '.join(executors)))
    guarded = [signature for signature, owner in TRIGGER_FUNCTIONS.items() if owner == GUARD_ROLE
               and _one(db, 'SELECT pg_get_userbyid(proowner) FROM pg_proc '
                            'WHERE oid = to_regprocedure(%s)', (signature,)) == GUARD_ROLE]
    if guarded:
        problems += _powers(db, GUARD_ROLE)
        live = live_policy_map(db)
        problems += ['policy %s on %s (the guard\'s, migration 0007) is missing' % (name, table)
                     for table, name in GUARD_POLICIES if (table, name) not in live]
    return problems


def _trigger_function_revoke_sql(signatures):
    """EXECUTE on the trigger functions `signatures` taken from PUBLIC and every API role that
    exists (a REVOKE naming a missing role fails)."""
    functions = ', '.join(signatures)
    return """DO $hub_do$
DECLARE
    api_role pg_catalog.text;
BEGIN
    REVOKE ALL ON FUNCTION %s FROM PUBLIC;
    FOR api_role IN SELECT rolname FROM pg_catalog.pg_roles
                    WHERE rolname IN (%s) ORDER BY 1 LOOP
        EXECUTE 'REVOKE ALL ON FUNCTION %s FROM ' || pg_catalog.quote_ident(api_role);
    END LOOP;
END $hub_do$""" % (functions, ', '.join(sqltext.text(r) for r in ROLES), functions)


def _install_trigger_functions(db):
    """Take EXECUTE on the trigger functions back from PUBLIC and the API roles (a GRANT made
    after migration 0007, or default privileges applied to a function re-created since)."""
    problems = _trigger_function_problems(db)
    exposed = [signature for signature in TRIGGER_FUNCTIONS
               if any(signature in p and 'may execute' in p for p in problems)]
    if not exposed:
        return []
    db.execute_sql(_trigger_function_revoke_sql(exposed))
    return ['revoked EXECUTE on trigger function(s) %s from PUBLIC and the API roles'
            % ', '.join(exposed)]


def _rpc_problems(db):
    """What differs from RPCS and RPC_OWNERS for each RPC that exists: who may execute it, and
    who owns it (`install` repairs the first; a migration made the second)."""
    problems = []
    for signature, (roles, _) in RPCS.items():
        row = _function_facts(db, signature)
        if row is None:
            continue
        config, definer, owner, executors = row
        if sorted(executors) != sorted(r for r in roles if live_role(db, r)[0]):
            problems.append('function %s may be executed by %s; only %s should (run `hub rls '
                            'install`)' % (signature, ', '.join(executors) or 'no API role',
                                           ', '.join(roles)))
        if definer and (owner != RPC_OWNERS.get(signature)
                        or config != TRIGGER_FUNCTION_CONFIG):
            problems.append('function %s should be owned by %s and SET %s (run `hub db '
                            'migrate`)' % (signature, RPC_OWNERS.get(signature),
                                           ', '.join(TRIGGER_FUNCTION_CONFIG)))
        if definer and owner == RPC_OWNERS.get(signature):
            problems += _powers(db, owner)
    return problems


def _rpc_grant_sql(signature):
    """EXECUTE on `signature` for exactly the roles RPCS names, if the function exists."""
    roles = RPCS[signature][0]
    return _guarded('pg_catalog.to_regprocedure(%s) IS NOT NULL' % sqltext.text(signature), [
        'REVOKE ALL ON FUNCTION %s FROM PUBLIC, %s' % (signature, ', '.join(ROLES)),
        'GRANT EXECUTE ON FUNCTION %s TO %s' % (signature, ', '.join(roles))])


def _install_rpcs(db):
    problems = _rpc_problems(db)
    actions = []
    for signature, (roles, _) in RPCS.items():
        if any(signature in p and 'may be executed' in p for p in problems):
            db.execute_sql(_rpc_grant_sql(signature))
            actions.append('granted EXECUTE on %s to %s only' % (signature, ', '.join(roles)))
    return actions


# -- install / uninstall -----------------------------------------------------------------------

def install(db, mode=None):
    """Create what is missing (roles, auth, helpers, grants, policies) in one transaction.

    `mode` is one of MODES ('members', 'active'); None keeps the mode installed, 'members' on a
    database without one. It is kept in the comment of schema hub_private (installed_mode).
    Idempotent: returns the list of actions taken, [] when everything was already in place.
    Refuses (DatabaseNewer) a database migrated by a newer hub, whose tables it may not know.
    """
    from hub.migrate import ensure_known

    if mode is not None and mode not in MODES:
        raise RlsError('unknown row-level security mode %r; use one of: %s'
                       % (mode, ', '.join(MODES)))
    ensure_known(db)
    missing = _missing_tables(db)
    if missing:
        raise RlsError('cannot install row-level security: table(s) %s missing; run `hub db '
                       'migrate` first' % ', '.join(missing))
    actions = []
    citus = on_citus(db)
    with db.atomic():
        _sequential(db, citus)
        actions += _install_roles(db)
        actions += _install_auth(db)
        mode = mode or installed_mode(db) or DEFAULT_MODE
        actions += _install_helpers(db, citus)
        actions += _install_pre_request(db)
        actions += _install_mode(db, mode)
        actions += _install_grants(db)
        actions += _install_policies(db, mode, citus)
        actions += _install_trigger_functions(db)
        # What no model covers (a table, sequence or trigger function of public that hub did
        # not create) is closed as every migration closes it.
        sync(db)
        actions += _install_rpcs(db)
        actions += _install_repairs(db)
    if citus and not db.in_transaction():
        # Not transactional: run_command_on_workers commits on each worker by itself, over
        # connections of its own, which wait for the roles an open transaction of this session
        # created or altered there: inside a caller's transaction (hub.lifecycle.prepare, so
        # `hub seed`) they waited for ever. Such a caller runs install_worker_logins after it.
        actions += install_worker_logins(db)
    return actions


def _install_repairs(db):
    """What the catalog audit (hub.audit) finds in the schemas install secures and can repair
    without a person's decision, whoever created it: EXECUTE on trigger functions and on
    SECURITY DEFINER functions that are neither helpers nor documented RPCs, privileges on
    sequences, CREATE on the schemas. REVOKEs only; what remains, `hub rls install` names."""
    actions = []
    for violation in violations(db):
        if violation.repair:
            db.execute_sql(violation.repair)
            actions.append('%s: %s' % (violation.object, violation.repair))
    return actions


def violations(db):
    """The catalog audit (hub.audit) against this module's policy model: [hub.audit.Violation],
    [] on a secured database. After install, what remains needs a person's decision (a table
    with no model, a view that runs as its owner, a SECURITY DEFINER function's owner)."""
    return audit.violations(db, sys.modules[__name__])


#: The comment of schema hub_private; its last words name the installed mode.
_SCHEMA_COMMENT = ('membership helpers of the hub row-level security policies (hub rls install); '
                   'mode: %s')


def installed_mode(db):
    """The mode the policies were installed in ('members' or 'active'), None if not installed.

    An install made before modes existed reads as 'members' (the only policies it had).
    """
    if not live_schema_exists(db, HELPER_SCHEMA):
        return None
    comment = live_schema_comment(db, HELPER_SCHEMA) or ''
    prefix = _SCHEMA_COMMENT % ''
    mode = comment[len(prefix):] if comment.startswith(prefix) else None
    return mode if mode in MODES else DEFAULT_MODE


def _install_mode(db, mode):
    if live_schema_comment(db, HELPER_SCHEMA) == _SCHEMA_COMMENT % mode:
        return []
    db.execute_sql(_mode_sql(mode))
    return ['row-level security mode: %s' % mode]


def _mode_sql(mode):
    return 'COMMENT ON SCHEMA %s IS %s' % (HELPER_SCHEMA, sqltext.text(_SCHEMA_COMMENT % mode))


# -- the statements install runs ----------------------------------------------------------------
#
# install() asks the catalog what is missing and runs, for each missing thing, the statements
# built here; install_plan() lists the same statements for a database just migrated, in the same
# order. What may already exist in the cluster (roles, Supabase's auth) is guarded in the SQL
# itself, so one text serves both, on plain PostgreSQL and on Supabase.

def _guarded(condition, statements, duplicates=False):
    """One DO block running `statements` only when `condition` (SQL) holds; with
    `duplicates`, a concurrent creation of the same role elsewhere is fine (roles are
    cluster-wide: another database's install may create it at the same moment)."""
    body = ''.join('\n        %s;' % statement for statement in statements)
    return 'DO $hub_do$ BEGIN\n    IF %s THEN%s\n    END IF;%s\nEND $hub_do$' % (
        condition, body,
        '\nEXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;' if duplicates else '')


def _role_missing(role):
    return 'NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s)' % sqltext.text(role)


def _create_role_sql(role):
    attrs = 'NOLOGIN NOINHERIT' + (' BYPASSRLS' if role == 'service_role' else '')
    return _guarded(_role_missing(role), ['CREATE ROLE %s %s' % (role, attrs)], duplicates=True)


BYPASS_SQL = _guarded("EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role' "
                      "AND NOT rolbypassrls)", ['ALTER ROLE service_role BYPASSRLS'])
CREATE_DEFINER_SQL = _guarded(_role_missing(DEFINER_ROLE), [
    'CREATE ROLE %s NOLOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS'
    % DEFINER_ROLE,
    "COMMENT ON ROLE %s IS 'owns the hub row-level security helpers (hub rls install); never "
    "log in as it'" % DEFINER_ROLE], duplicates=True)
AUTH_SCHEMA_SQL = _guarded(
    "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'auth')",
    ['CREATE SCHEMA auth', 'COMMENT ON SCHEMA auth IS %s' % sqltext.text(AUTH_MARK),
     'GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role'])


def _auth_function_sql(name):
    returns, body = AUTH_FUNCTIONS[name]
    return _guarded(
        "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
        "ON n.oid = p.pronamespace WHERE n.nspname = 'auth' AND p.proname = %s "
        "AND p.pronargs = 0)" % sqltext.text(name),
        ['CREATE FUNCTION auth.%s() RETURNS %s LANGUAGE sql STABLE AS $hub$%s$hub$'
         % (name, returns, body),
         'COMMENT ON FUNCTION auth.%s() IS %s' % (name, sqltext.text(AUTH_MARK))])


HELPER_SCHEMA_SQL = _guarded(
    'NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s)'
    % sqltext.text(HELPER_SCHEMA),
    ['CREATE SCHEMA %s' % HELPER_SCHEMA])
# Nobody may create objects here: a function planted in a SECURITY DEFINER helper's schema is
# the classic escalation.
HELPER_SCHEMA_PRIVATE_SQL = 'REVOKE ALL ON SCHEMA %s FROM PUBLIC' % HELPER_SCHEMA
#: The definer's rights, and nothing more: reach the two schemas, read organization_members
#: (through DEFINER_POLICY, installed with the other policies). (check, grant) pairs.
DEFINER_GRANTS = (
    ("has_schema_privilege(%s, 'public', 'USAGE')",
     'GRANT USAGE ON SCHEMA public TO %s' % DEFINER_ROLE),
    ("has_schema_privilege(%s, '" + HELPER_SCHEMA + "', 'USAGE')",
     'GRANT USAGE ON SCHEMA %s TO %s' % (HELPER_SCHEMA, DEFINER_ROLE)),
    ("has_table_privilege(%s, 'public.organization_members', 'SELECT')",
     'GRANT SELECT ON public.organization_members TO %s' % DEFINER_ROLE))


def _helper_statements(name, citus=False):
    """Create or replace helper `name`, with its comment."""
    return [helper_sql(name, citus), 'COMMENT ON FUNCTION %s.%s() IS %s'
            % (HELPER_SCHEMA, name, sqltext.text(HELPERS[name][3]))]


def _helper_revoke_sql(name):
    return 'REVOKE ALL ON FUNCTION %s.%s() FROM PUBLIC, anon' % (HELPER_SCHEMA, name)


def _handover_sql(names):
    """Give the definer the helpers `names`, as a superuser or as a CREATEROLE owner (see
    _hand_helpers_to_definer); which one is asked of the database when the block runs."""
    alter = ''.join('\n    ALTER FUNCTION %s.%s() OWNER TO %s;' % (HELPER_SCHEMA, name,
                                                                   DEFINER_ROLE)
                    for name in names)
    return """DO $hub_do$
DECLARE
    superuser boolean := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
BEGIN
    IF NOT superuser THEN
        IF NOT pg_catalog.pg_has_role(current_user, '%(role)s', 'USAGE') THEN
            -- SET for the transfer; INHERIT so later installs may replace and grant the helpers
            -- as their owner (PostgreSQL 16 gives a CREATEROLE creator neither).
            EXECUTE 'GRANT %(role)s TO CURRENT_USER' || CASE
                WHEN pg_catalog.current_setting('server_version_num')::int >= 160000
                THEN ' WITH INHERIT TRUE, SET TRUE' ELSE '' END;
        END IF;
        GRANT CREATE ON SCHEMA %(schema)s TO %(role)s;
    END IF;%(alter)s
    IF NOT superuser THEN
        REVOKE CREATE ON SCHEMA %(schema)s FROM %(role)s;
    END IF;
END $hub_do$""" % {'role': DEFINER_ROLE, 'schema': HELPER_SCHEMA, 'alter': alter}


HELPER_USAGE_SQL = 'GRANT USAGE ON SCHEMA %s TO authenticated, service_role' % HELPER_SCHEMA
PUBLIC_USAGE_SQL = 'GRANT USAGE ON SCHEMA public TO authenticated, service_role'
PUBLIC_USAGE_MISSING = ("NOT has_schema_privilege('authenticated', 'public', 'USAGE') "
                        "OR NOT has_schema_privilege('service_role', 'public', 'USAGE')")


def _helper_execute_sql():
    return 'GRANT EXECUTE ON FUNCTION %s TO %s' % (', '.join(
        '%s.%s()' % (HELPER_SCHEMA, name) for name in HELPERS), ', '.join(HELPER_ROLES))


def _grant_statements(table, want):
    """Start from nothing, whatever default privileges or earlier grants (column grants
    included: REVOKE on the table takes them too) the database had; then grant `want`."""
    statements = ['REVOKE ALL ON public.%s FROM PUBLIC, %s' % (table, ', '.join(ROLES))]
    grants = collections.defaultdict(list)  # (role, privilege) -> [columns] ([] = table)
    for t, role, privilege, column in sorted(want, key=lambda w: (w[1], w[2], w[3] or '')):
        if t == table:
            grants[role, privilege] += [] if column is None else [column]
    for (role, privilege), columns in sorted(grants.items()):
        statements.append('GRANT %s%s ON public.%s TO %s' % (
            privilege, ' (%s)' % ', '.join(columns) if columns else '', table, role))
    return statements


def _sequence_revoke_sql(sequence):
    return 'REVOKE ALL ON SEQUENCE %s FROM PUBLIC, %s' % (sequence, ', '.join(ROLES))


def _enable_sql(table):
    return 'ALTER TABLE public.%s ENABLE ROW LEVEL SECURITY' % table


def _policy_statements(table, command, mode, citus=False):
    sql = policy_sql(table, command, mode, citus)
    return [sql, "COMMENT ON POLICY %s ON public.%s IS '%s'"
            % (policy_name(command), table, _fingerprint(sql))]


def _definer_policy_statements():
    return [DEFINER_POLICY_SQL, "COMMENT ON POLICY %s ON public.organization_members IS '%s'"
            % (DEFINER_POLICY, _fingerprint(DEFINER_POLICY_SQL))]


def _setup_statements(mode):
    """What install creates besides the tables' grants and policies, guarded where it may
    exist already: roles and Supabase's auth, the helpers and their owner, the mode (None:
    keep an installed one, else the default), USAGE on public."""
    plan = [_create_role_sql(role) for role in ROLES] + [BYPASS_SQL, CREATE_DEFINER_SQL]
    plan += [AUTH_SCHEMA_SQL] + [_auth_function_sql(name) for name in AUTH_FUNCTIONS]
    plan += [HELPER_SCHEMA_SQL, HELPER_SCHEMA_PRIVATE_SQL]
    plan += [_guarded('NOT ' + check % sqltext.text(DEFINER_ROLE), [grant])
             for check, grant in DEFINER_GRANTS]
    for name in HELPERS:
        plan += [_by_target(single, citus) for single, citus in zip(
            _helper_statements(name), _helper_statements(name, citus=True))]
        plan.append(_helper_revoke_sql(name))
    plan += [_handover_sql(list(HELPERS)), HELPER_USAGE_SQL, _helper_execute_sql()]
    plan += [_by_target(single, citus) for single, citus in zip(
        _kept_statements(), _kept_statements(citus=True))]
    plan += pre_request_statements()
    if mode is None:
        plan.append(_guarded(
            'NOT pg_catalog.starts_with(coalesce(pg_catalog.obj_description(%s::regnamespace, '
            "'pg_namespace'), ''), %s)" % (sqltext.text(HELPER_SCHEMA),
                                           sqltext.text(_SCHEMA_COMMENT % '')),
            [_mode_sql(DEFAULT_MODE)]))
    else:
        plan.append(_mode_sql(mode))
    plan.append(_guarded(PUBLIC_USAGE_MISSING, [PUBLIC_USAGE_SQL]))
    return plan


def _by_target(single, citus):
    """`single`, or a DO block that runs `citus` instead on a Citus coordinator (a file does not
    know where it will run: the catalog decides, as in the sync)."""
    if single == citus:
        return single
    return ("DO $hub_target$ BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE "
            "extname = 'citus') THEN EXECUTE %s; ELSE EXECUTE %s; END IF; END $hub_target$"
            % (sqltext.text(citus), sqltext.text(single)))


def install_sql(mode=None):
    """The statements `install(db, mode)` amounts to, as SQL that runs unchanged on a
    database where row-level security is installed, not installed or half installed
    (`hub rls install --sql`; the end of `hub db sql`): what install creates besides the
    tables' grants and policies, guarded where it may exist already, then `sync_sql(replace=
    True)`, which asks the catalog which grants and policies are missing or stale, then the
    audit's repairs (`repairs_sql`). `mode` None keeps an installed mode (the default on a
    database without one)."""
    return (_setup_statements(mode) + [sync_sql(replace=True), repairs_sql()]
            + [_rpc_grant_sql(signature) for signature in RPCS])


def install_plan(mode=DEFAULT_MODE):
    """`install_sql(mode)` for a database just migrated, in `mode` (`hub db sql`)."""
    return install_sql(mode)


# -- the sync: every migration ends with it ---------------------------------------------------
#
# One DO block that decides at run time from the catalog, with what hub.models and this module
# say baked in as literals: hub.migrate runs it at the end of every migration (up, and down on
# rollback) in the migration's own transaction, `hub db migrate --sql` writes it after each
# migration, and install ends with it. So a table a migration creates is never committed
# reachable beyond the model: Supabase's default privileges grant the API roles ALL on every
# new table in public, and a separate `hub rls install` afterwards leaves a window (docs/rls.md).

_SYNC = r"""DO $hub_sync$
DECLARE
    -- hub.models and hub.rls when this text was written: per table its columns, the columns
    -- authenticated may INSERT and UPDATE, and its policies (per mode: [CREATE, comment]).
    model CONSTANT jsonb := $hub_model$%(model)s$hub_model$;
    helpers CONSTANT text[] := %(helpers)s;
    replacing CONSTANT boolean := %(replace)s;
    prefix CONSTANT text := %(prefix)s;
    public_ns oid := (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'public');
    api text[];
    grantees text;
    installed boolean;
    mode text := 'members';
    -- A Citus coordinator takes the policies' direct shape (hub.rls._direct).
    citus CONSTANT boolean := EXISTS (SELECT 1 FROM pg_catalog.pg_extension
                                      WHERE extname = 'citus');
    note text;
    rel record;
    spec jsonb;
    live text[];
    want text[];
    have text[];
    cols text[];
    pol record;
    wanted jsonb;
    present boolean;
    priv record;
    marked text;
    fn record;
BEGIN
    IF public_ns IS NULL THEN
        RETURN;
    END IF;
    IF citus THEN
        -- DDL on reference tables after distributed ones in one transaction: one connection per
        -- node, or Citus refuses it.
        SET LOCAL citus.multi_shard_modify_mode = 'sequential';
    END IF;
    SELECT coalesce(pg_catalog.array_agg(rolname::text ORDER BY rolname), '{}') INTO api
    FROM pg_catalog.pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role');
    grantees := pg_catalog.array_to_string(
        ARRAY['PUBLIC'] || ARRAY(SELECT pg_catalog.quote_ident(r) FROM pg_catalog.unnest(api) r),
        ', ');
    -- Policies and grants only where `hub rls install` has run: its helpers, their owner and
    -- the roles exist. Elsewhere every table is deny-all: RLS on, no API privilege.
    installed := pg_catalog.cardinality(api) = 3
        AND pg_catalog.to_regnamespace(%(schema)s) IS NOT NULL
        AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %(definer)s)
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(helpers) h
                        WHERE pg_catalog.to_regprocedure(h) IS NULL);
    IF installed THEN
        note := pg_catalog.obj_description(pg_catalog.to_regnamespace(%(schema)s), 'pg_namespace');
        IF pg_catalog.starts_with(coalesce(note, ''), prefix)
                AND pg_catalog.substr(note, pg_catalog.length(prefix) + 1)
                    IN ('members', 'active') THEN
            mode := pg_catalog.substr(note, pg_catalog.length(prefix) + 1);
        END IF;
    END IF;

    -- Every table of public we may alter (ours or our role's; not an extension's).
    FOR rel IN
        SELECT c.oid, c.relname::text AS name, c.relrowsecurity AS secured, c.relacl
        FROM pg_catalog.pg_class c
        WHERE c.relnamespace = public_ns AND c.relkind IN ('r', 'p')
          AND pg_catalog.pg_has_role(c.relowner, 'USAGE')
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                          WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                            AND d.objid = c.oid AND d.deptype = 'e')
        ORDER BY c.relname
    LOOP
        IF NOT rel.secured THEN
            EXECUTE pg_catalog.format('ALTER TABLE public.%%I ENABLE ROW LEVEL SECURITY',
                                      rel.name);
        END IF;
        spec := CASE WHEN installed THEN model -> rel.name END;
        live := ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
                      ORDER BY a.attnum);
        -- What the API roles and PUBLIC should hold, and hold, as 'role PRIVILEGE column'
        -- ('' for a privilege of the table alone); a table grant of a column privilege counts
        -- as that privilege on every column.
        want := '{}';
        IF spec IS NOT NULL THEN
            want := ARRAY(
                SELECT v.r || ' ' || v.p || ' ' || c
                FROM (VALUES ('authenticated', 'SELECT'), ('service_role', 'SELECT'),
                             ('service_role', 'INSERT'), ('service_role', 'UPDATE')) v (r, p),
                     pg_catalog.unnest(live) c
                UNION ALL
                SELECT 'authenticated ' || w.p || ' ' || c
                FROM (VALUES ('INSERT', 'insert'), ('UPDATE', 'update')) w (p, k),
                     pg_catalog.unnest(live) c
                WHERE c IN (SELECT pg_catalog.jsonb_array_elements_text(coalesce(
                    CASE WHEN citus THEN spec -> ('citus ' || w.k) END, spec -> w.k)))
                UNION ALL
                SELECT r || ' DELETE '
                FROM pg_catalog.unnest(ARRAY['authenticated', 'service_role']) r);
        END IF;
        have := ARRAY(
            SELECT g.who || ' ' || g.privilege || ' ' || g.col FROM (
                SELECT a.grantee, a.privilege_type AS privilege, c AS col
                FROM pg_catalog.aclexplode(rel.relacl) a,
                     pg_catalog.unnest(CASE WHEN a.privilege_type IN ('SELECT', 'INSERT',
                         'UPDATE', 'REFERENCES') THEN live ELSE ARRAY[''] END) c
                UNION ALL
                SELECT x.grantee, x.privilege_type, a.attname::text
                FROM pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) x
                WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
            ) g0 CROSS JOIN LATERAL (SELECT CASE WHEN g0.grantee = 0 THEN 'PUBLIC'
                                           ELSE g0.grantee::pg_catalog.regrole::text END AS who,
                                           g0.privilege, g0.col) g
            WHERE g.who = 'PUBLIC' OR g.who = ANY (api));
        IF ARRAY(SELECT DISTINCT x FROM pg_catalog.unnest(want) x ORDER BY x) IS DISTINCT FROM
                ARRAY(SELECT DISTINCT x FROM pg_catalog.unnest(have) x ORDER BY x) THEN
            EXECUTE pg_catalog.format('REVOKE ALL ON public.%%I FROM %%s', rel.name, grantees);
            IF spec IS NOT NULL THEN
                -- In the order `hub rls install` grants them (hub.rls._grant_statements).
                EXECUTE pg_catalog.format('GRANT DELETE ON public.%%I TO authenticated', rel.name);
                FOR priv IN SELECT * FROM (VALUES ('INSERT', 'insert'), ('SELECT', NULL),
                                                  ('UPDATE', 'update')) w (p, k) LOOP
                    cols := CASE WHEN priv.k IS NULL THEN live ELSE ARRAY(
                        SELECT c FROM pg_catalog.unnest(live) c
                        WHERE c IN (SELECT pg_catalog.jsonb_array_elements_text(coalesce(
                            CASE WHEN citus THEN spec -> ('citus ' || priv.k) END,
                            spec -> priv.k))))
                    END;
                    IF pg_catalog.cardinality(cols) = pg_catalog.cardinality(live) THEN
                        EXECUTE pg_catalog.format('GRANT %%s ON public.%%I TO authenticated',
                                                  priv.p, rel.name);
                    ELSIF pg_catalog.cardinality(cols) > 0 THEN
                        EXECUTE pg_catalog.format('GRANT %%s (%%s) ON public.%%I TO authenticated',
                            priv.p, (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ')
                                    FROM pg_catalog.unnest(cols) c), rel.name);
                    END IF;
                END LOOP;
                EXECUTE pg_catalog.format('GRANT DELETE, INSERT, SELECT, UPDATE ON public.%%I '
                                          'TO service_role', rel.name);
            END IF;
        END IF;
        -- The model's policies, once every column they may name exists: missing ones created,
        -- and (install) stale ones replaced; a table in the middle of an upgrade keeps its own.
        IF spec IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM pg_catalog.jsonb_array_elements_text(spec -> 'columns') c
                WHERE c <> ALL (live)) THEN
            FOR pol IN SELECT key, value FROM pg_catalog.jsonb_each(spec -> 'policies')
                       ORDER BY key LOOP
                wanted := coalesce(CASE WHEN citus THEN pol.value -> ('citus ' || mode) END,
                                   pol.value -> mode, pol.value -> 'members');
                SELECT true, pg_catalog.obj_description(p.oid, 'pg_policy') INTO present, marked
                FROM pg_catalog.pg_policy p WHERE p.polrelid = rel.oid AND p.polname = pol.key;
                IF present AND (NOT replacing OR marked IS NOT DISTINCT FROM wanted ->> 1) THEN
                    CONTINUE;
                END IF;
                IF present THEN
                    EXECUTE pg_catalog.format('DROP POLICY %%I ON public.%%I', pol.key, rel.name);
                END IF;
                EXECUTE wanted ->> 0;
                EXECUTE pg_catalog.format('COMMENT ON POLICY %%I ON public.%%I IS %%L', pol.key,
                                          rel.name, wanted ->> 1);
            END LOOP;
        END IF;
    END LOOP;

    -- Sequences: no API role needs one (ids come from public.hub_new_id()).
    FOR rel IN
        SELECT c.relname::text AS name FROM pg_catalog.pg_class c
        WHERE c.relnamespace = public_ns AND c.relkind = 'S'
          AND pg_catalog.pg_has_role(c.relowner, 'USAGE')
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                          WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                            AND d.objid = c.oid AND d.deptype = 'e')
          AND EXISTS (SELECT 1 FROM pg_catalog.aclexplode(c.relacl) a
                      WHERE a.grantee = 0 OR a.grantee::pg_catalog.regrole::text = ANY (api))
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON SEQUENCE public.%%I FROM %%s', rel.name,
                                  grantees);
    END LOOP;

    -- Trigger functions: a trigger runs without EXECUTE; an API role with it could only
    -- call the function from triggers of its own making (issue: hub_keep_an_owner).
    FOR fn IN
        SELECT p.proname::text AS name,
               pg_catalog.pg_get_function_identity_arguments(p.oid) AS args
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = public_ns
          AND p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype
          AND pg_catalog.pg_has_role(p.proowner, 'USAGE')
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                          WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                            AND d.objid = p.oid AND d.deptype = 'e')
          AND (p.proacl IS NULL OR EXISTS (
                SELECT 1 FROM pg_catalog.aclexplode(p.proacl) a
                WHERE a.privilege_type = 'EXECUTE'
                  AND (a.grantee = 0 OR a.grantee::pg_catalog.regrole::text = ANY (api))))
    LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION public.%%I(%%s) FROM %%s',
                                  fn.name, fn.args, grantees);
    END LOOP;
END $hub_sync$"""


def sync_model():
    """What the sync knows of hub.models and hub.rls: {table: {'columns', 'insert', 'update',
    'policies': {name: {mode: [CREATE POLICY, comment]}}}} for every table with policies
    ('active' only where it differs from 'members'; 'citus members' and 'citus active', the
    direct shape a Citus coordinator takes, only where it differs from that mode's)."""
    out = {}
    for table, by_command in policies().items():
        named = {}
        for command in by_command:
            variants = {}
            for mode in MODES:
                sql = policy_sql(table, command, mode)
                variants[mode] = [sql, _fingerprint(sql)]
            for mode in MODES:
                sql = policy_sql(table, command, mode, citus=True)
                variants['citus ' + mode] = [sql, _fingerprint(sql)]
            # Only what differs: 'active' from 'members', a Citus shape from that mode's.
            for mode in MODES:
                if variants['citus ' + mode] == variants[mode]:
                    del variants['citus ' + mode]
            if variants['active'] == variants['members']:
                del variants['active']
            named[policy_name(command)] = variants
        if table == 'organization_members':
            named[DEFINER_POLICY] = {'members': [DEFINER_POLICY_SQL,
                                                 _fingerprint(DEFINER_POLICY_SQL)]}
        out[table] = {'columns': model_columns(table),
                      'insert': writable_columns(table, 'INSERT'),
                      'update': writable_columns(table, 'UPDATE'), 'policies': named}
        if writable_columns(table, 'INSERT', citus=True) != out[table]['insert']:
            out[table]['citus insert'] = writable_columns(table, 'INSERT', citus=True)
    return out


def sync_sql(replace=False):
    """The sync as one SQL text (a DO block), for psql, a Supabase migration file or `sync`.

    For every table of public it may alter: row-level security on; where `hub rls install`
    has run (the helpers exist) and the table has a model, the model's grants for the API roles
    (its INSERT and UPDATE column grants meet the live columns, so a column a migration adds
    gets its grant) and, once the model's columns all exist, its missing policies in the
    installed mode (with `replace`, stale ones are replaced too, as install does); any other
    table is deny-all (the API roles and PUBLIC hold nothing). Sequences and trigger functions
    of public: the API roles' access revoked. A database where nothing differs is not touched
    (no lock is taken on a table whose state is right). Contains % (run it without parameters:
    `sync`).
    """
    model = json.dumps(sync_model(), sort_keys=True, separators=(',', ':'))
    assert '$hub_model$' not in model
    return _SYNC % {
        'model': model,
        'helpers': 'ARRAY[%s]::text[]' % ', '.join(
            sqltext.text('%s.%s()' % (HELPER_SCHEMA, name)) for name in HELPERS),
        'replace': 'true' if replace else 'false',
        'prefix': sqltext.text(_SCHEMA_COMMENT % ''),
        'schema': sqltext.text(HELPER_SCHEMA), 'definer': sqltext.text(DEFINER_ROLE)}


def sync(db, replace=False):
    """Run `sync_sql(replace)` on `db`, in its current transaction (hub.migrate calls it at the
    end of every migration; install at its end)."""
    # Through the driver's cursor without parameters: the text holds format()'s % signs.
    db.cursor().execute(sync_sql(replace))


def repairs_sql():
    """install's repairs (_install_repairs) as one statement for a file: the same REVOKEs,
    chosen from the catalog when the file runs (a migration before it may add functions)."""
    secured = audit.secured_schemas(sys.modules[__name__])
    rpcs = ', '.join(sqltext.text(signature) for signature in RPCS)
    revoke_from = ', '.join((PUBLIC,) + ROLES)
    return """DO $hub_do$
DECLARE
    f record;
BEGIN
    REVOKE CREATE ON SCHEMA %(schemas)s FROM %(from)s;
    REVOKE ALL ON SCHEMA %(helpers)s FROM PUBLIC, anon;
    FOR f IN SELECT c.oid::pg_catalog.regclass::pg_catalog.text AS name
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'S' AND n.nspname IN (%(names)s) AND %(own_class)s LOOP
        EXECUTE 'REVOKE ALL ON SEQUENCE ' || f.name || ' FROM %(from)s';
    END LOOP;
    FOR f IN SELECT %(signature)s AS name, p.prorettype IN ('pg_catalog.trigger'::pg_catalog.regtype,
                    'pg_catalog.event_trigger'::pg_catalog.regtype) AS trigger
             FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname IN (%(names)s) AND %(own_proc)s AND (p.prosecdef
                   OR p.prorettype IN ('pg_catalog.trigger'::pg_catalog.regtype,
                                       'pg_catalog.event_trigger'::pg_catalog.regtype)) LOOP
        IF f.trigger OR f.name <> ALL (ARRAY[%(keep)s]::pg_catalog.text[]) THEN
            EXECUTE 'REVOKE EXECUTE ON FUNCTION ' || f.name || ' FROM %(from)s';
        END IF;
    END LOOP;%(rpcs)s
END $hub_do$""" % {
        'rpcs': ''.join("""
    IF pg_catalog.to_regprocedure(%s) IS NOT NULL THEN
        REVOKE EXECUTE ON FUNCTION %s FROM %s;
    END IF;""" % (sqltext.text(signature), signature, ', '.join(
            r for r in (PUBLIC,) + ROLES if r not in roles)) for signature, (roles, _) in RPCS.items()),
        'schemas': ', '.join(secured), 'helpers': HELPER_SCHEMA,
        'from': revoke_from, 'names': ', '.join(sqltext.text(s) for s in secured),
        'own_class': audit.NOT_EXTENSION % {'class': "'pg_catalog.pg_class'", 'oid': 'c.oid'},
        'own_proc': audit.NOT_EXTENSION % {'class': "'pg_catalog.pg_proc'", 'oid': 'p.oid'},
        'signature': audit.SIGNATURE,
        'keep': ', '.join([sqltext.text('%s.%s()' % (HELPER_SCHEMA, name)) for name in HELPERS]
                          + ([rpcs] if RPCS else []))}


def _install_roles(db):
    actions = []
    for role in ROLES:
        exists, bypass = live_role(db, role)
        if not exists:
            db.execute_sql(_create_role_sql(role))
            actions.append('created role %s' % role)
        elif role == 'service_role' and not bypass:
            db.execute_sql(BYPASS_SQL)
            actions.append('gave role service_role BYPASSRLS')
    if _definer(db) is None:
        db.execute_sql(CREATE_DEFINER_SQL)
        actions.append('created role %s' % DEFINER_ROLE)
    return actions


def _definer_problems(db):
    attrs = _definer(db)
    if attrs is None:
        return ['role %s (the helpers\' owner) does not exist' % DEFINER_ROLE]
    return ['role %s must not %s' % (DEFINER_ROLE, what)
            for what, bad in zip(('log in', 'be a superuser', 'bypass RLS'), attrs) if bad]


def _install_auth(db):
    """Supabase's auth.uid()/auth.jwt(), only where missing (never touching Supabase's own)."""
    actions = []
    if not live_schema_exists(db, 'auth'):
        db.execute_sql(AUTH_SCHEMA_SQL)
        actions.append('created schema auth')
    for name in AUTH_FUNCTIONS:
        if live_function(db, 'auth', name) is None:
            db.execute_sql(_auth_function_sql(name))
            actions.append('created function auth.%s()' % name)
    return actions


def _install_helpers(db, citus=False):
    actions = []
    if not live_schema_exists(db, HELPER_SCHEMA):
        db.execute_sql(HELPER_SCHEMA_SQL)
        actions.append('created schema %s' % HELPER_SCHEMA)
    db.execute_sql(HELPER_SCHEMA_PRIVATE_SQL)
    actions += _grant_definer(db)
    for name in HELPERS:
        returns, definer, _, comment = HELPERS[name]
        live = live_function(db, HELPER_SCHEMA, name)
        if live is None or live[2] != helper_body(name, citus) or bool(live[0]) != definer \
                or live[1] != helper_config(citus):
            for statement in _helper_statements(name, citus):
                db.execute_sql(statement)
            actions.append('%s function %s.%s()' % ('created' if live is None else 'replaced',
                                                     HELPER_SCHEMA, name))
        db.execute_sql(_helper_revoke_sql(name))
    actions += _hand_helpers_to_definer(db)
    if not _one(db, "SELECT has_schema_privilege('authenticated', %s, 'USAGE')", (HELPER_SCHEMA,)):
        db.execute_sql(HELPER_USAGE_SQL)
        actions.append('granted usage on schema %s to authenticated' % HELPER_SCHEMA)
    ungranted = ['%s.%s()' % (HELPER_SCHEMA, name) for name in HELPERS if not _one(
        db, "SELECT has_function_privilege('authenticated', %s, 'EXECUTE')",
        ('%s.%s()' % (HELPER_SCHEMA, name),))]
    if ungranted:
        db.execute_sql(_helper_execute_sql())
        actions.append('granted execute on %s to authenticated, service_role'
                       % ', '.join(ungranted))
    stale = []
    for name, sql in kept_functions(citus).items():
        live = db.execute_sql('SELECT prosrc, proconfig FROM pg_proc '
                              'WHERE oid = to_regprocedure(%s)', ('%s(text, text)' % name,)
                              ).fetchone()
        if live is None or '$hub$%s$hub$' % live[0] not in sql \
                or (live[1] or []) != ['search_path=pg_catalog, pg_temp'] + (
                    CITUS_SETTINGS if citus else []):
            stale.append('%s function %s(text, text)' % (
                'created' if live is None else 'replaced', name))
    if stale:
        for statement in _kept_statements(citus):
            db.execute_sql(statement)
    return actions + stale


def _grant_definer(db):
    actions = []
    for check, grant in DEFINER_GRANTS:
        if not _one(db, 'SELECT ' + check, (DEFINER_ROLE,)):
            db.execute_sql(grant)
            actions.append(grant.lower().replace('grant', 'granted', 1))
    return actions


def _hand_helpers_to_definer(db):
    """ALTER FUNCTION ... OWNER TO the definer for every helper it does not own yet.

    A superuser may always. Any other installer (Supabase's `postgres` has CREATEROLE, not
    SUPERUSER) must be able to SET ROLE to the definer, and the definer needs CREATE on the
    helpers' schema for the moment of the transfer; both are arranged here (membership needs
    CREATEROLE) and the CREATE taken back at once. The installer keeps its membership, with
    INHERIT, so the next install can replace the helpers and grant EXECUTE on them.
    """
    wrong = sorted(n for n, owner in _helper_owners(db).items()
                   if n in HELPERS and owner != DEFINER_ROLE)
    if not wrong:
        return []
    from peewee import DatabaseError

    try:
        with db.atomic():
            db.execute_sql(_handover_sql(wrong))
    except DatabaseError as exc:
        cause = str(exc.__cause__ or exc).strip().splitlines()[0]
        raise RlsError('cannot hand the helpers to role %s (%s); install once as a superuser, '
                       'or connect as a CREATEROLE user holding %s WITH ADMIN OPTION'
                       % (DEFINER_ROLE, cause, DEFINER_ROLE)) from None
    return ['gave %s ownership of %s' % (DEFINER_ROLE, ', '.join(
        '%s.%s()' % (HELPER_SCHEMA, n) for n in wrong))]


def _sequential(db, citus):
    """On Citus, DDL on reference tables after DDL on distributed ones in one transaction needs
    the transaction's DDL sent over one connection per node (Citus refuses it otherwise)."""
    if citus:
        db.execute_sql("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")


def on_citus(db):
    """True on a Citus coordinator (hub.citus.enabled): install the direct policy shape and
    the helpers' Citus settings there."""
    from hub import citus

    return citus.enabled(db)


def _install_pre_request(db):
    """Schema hub_request and PostgREST's pre-request function (PRE_REQUEST), on every target."""
    live = _one(db, 'SELECT to_regprocedure(%s) IS NOT NULL', (PRE_REQUEST,))
    if live and not _pre_request_problems(db) and _one(
            db, "SELECT has_schema_privilege('anon', %s, 'USAGE')", (REQUEST_SCHEMA,)):
        return []
    for statement in pre_request_statements():
        db.cursor().execute(statement)  # no parameters: the body holds format()'s % signs
    return ['%s function %s (PostgREST db-pre-request)'
            % ('replaced' if live else 'created', PRE_REQUEST)]


#: The roles Citus connects to the workers as: Citus opens its connections to the workers as
#: the current role, so each role a query runs as (the API roles, and the definer roles whose
#: SECURITY DEFINER functions read distributed tables) must be able to log in there.
WORKER_LOGIN_ROLES = ROLES + (DEFINER_ROLE, GUARD_ROLE, 'hub_org_creator')


def worker_logins(db):
    """{worker 'host:port': [roles of WORKER_LOGIN_ROLES that cannot log in there]}."""
    names = ', '.join(sqltext.text(r) for r in WORKER_LOGIN_ROLES)
    rows = db.execute_sql(
        'SELECT nodename, nodeport, success, result FROM run_command_on_workers(%s)',
        ("SELECT coalesce(string_agg(rolname, ',' ORDER BY rolname), '') FROM pg_roles "
         "WHERE rolname IN (%s) AND NOT rolcanlogin" % names,)).fetchall()
    return {'%s:%s' % (host, port): [r for r in result.split(',') if r] if ok else [result]
            for host, port, ok, result in rows}


def install_worker_logins(db):
    """LOGIN for WORKER_LOGIN_ROLES on the workers only (the coordinator keeps them NOLOGIN):
    roles hub created (install, migrations 0007 and 0008). docs/rls.md says what the workers'
    pg_hba.conf must then allow. Outside any transaction that created or altered those roles:
    `install` runs it when called outside a transaction; a caller inside one, after committing."""
    present = [r for r in WORKER_LOGIN_ROLES if live_role(db, r)[0]]
    lacking = sorted({r for roles in worker_logins(db).values() for r in roles if r in present})
    for role in lacking:
        # Not propagated on from the worker (a worker sending role DDL to the other nodes
        # deadlocks with the coordinator's own propagation).
        failed = db.execute_sql(
            'SELECT nodename, nodeport, result FROM run_command_on_workers(%s) WHERE NOT success',
            ('SET citus.enable_alter_role_propagation TO off; ALTER ROLE %s LOGIN' % role,)
        ).fetchall()
        if failed:
            raise RlsError('cannot let role %s log in on worker %s:%s (%s); run `ALTER ROLE %s '
                           'LOGIN` there as a superuser' % ((role,) + tuple(failed[0]) + (role,)))
    return ['let role %s log in on the workers (Citus connects to them as the current role)'
            % role for role in lacking]


def _install_grants(db):
    actions = []
    if _one(db, 'SELECT ' + PUBLIC_USAGE_MISSING):
        db.execute_sql(PUBLIC_USAGE_SQL)
        actions.append('granted usage on schema public to authenticated, service_role')
    drift = privilege_drift(db)
    want = expected_privileges(db)
    for table in sorted({t for t, _ in drift}):
        for statement in _grant_statements(table, want):
            db.execute_sql(statement)
        for role in ROLES + (PUBLIC,):
            if (table, role) in drift:
                extra, missing = drift[table, role]
                actions.append('privileges of %s on %s: %s' % (role, table, '; '.join(
                    (['revoked ' + ', '.join(extra)] if extra else [])
                    + (['granted ' + ', '.join(missing)] if missing else []))))
    actions += _lock_history(db)
    return actions


def _lock_history(db):
    """The migration history is the owner's: no API role reaches it, and RLS without a policy
    refuses any role that is granted it later (defence in depth)."""
    table = _history_table()
    if not live_table_exists(db, table):
        return []
    actions = []
    if not live_rls(db, table)[0]:
        db.execute_sql(_enable_sql(table))
        actions.append('enabled row-level security on %s (no policy: nobody but its owner)'
                       % table)
    for sequence in live_sequences_reachable(db, table, ROLES):
        db.execute_sql(_sequence_revoke_sql(sequence))
        actions.append('revoked API access to sequence %s' % sequence)
    return actions


def _install_policies(db, mode, citus=False):
    actions = []
    live = live_policy_map(db)
    declared = policies()
    for table in declared:
        if not live_rls(db, table)[0]:
            db.execute_sql(_enable_sql(table))
            actions.append('enabled row-level security on %s' % table)
        for command in declared[table]:
            name = policy_name(command)
            mark = _fingerprint(policy_sql(table, command, mode, citus))
            current = live.get((table, name))
            if current is not None and current[4] == mark:
                continue
            if current is not None:
                db.execute_sql('DROP POLICY %s ON public.%s' % (name, table))
            for statement in _policy_statements(table, command, mode, citus):
                db.execute_sql(statement)
            actions.append('%s policy %s on %s (%s)' % (
                'created' if current is None else 'replaced', name, table, command))
    current = live.get(('organization_members', DEFINER_POLICY))
    if current is None or current[4] != _fingerprint(DEFINER_POLICY_SQL):
        if current is not None:
            db.execute_sql('DROP POLICY %s ON public.organization_members' % DEFINER_POLICY)
        for statement in _definer_policy_statements():
            db.execute_sql(statement)
        actions.append('%s policy %s on organization_members (SELECT, to %s)' % (
            'created' if current is None else 'replaced', DEFINER_POLICY, DEFINER_ROLE))
    return actions


def uninstall(db):
    """Remove our policies, helpers and auth stand-in; revoke the API roles' table access.

    Row-level security stays on: the database is left as a migration leaves one where install
    never ran, deny-all (the sync). A no-op on a database where nothing is installed
    (hub.lifecycle.reset calls it first).
    Roles stay: they are cluster-wide and other databases may use them. Refuses (DatabaseNewer)
    a database migrated by a newer hub.
    """
    from hub.migrate import ensure_known

    ensure_known(db)
    actions = []
    with db.atomic():
        _sequential(db, on_citus(db))
        live = live_policy_map(db)
        for table, name, _ in sorted(expected_policies()):
            if (table, name) in live:
                db.execute_sql('DROP POLICY %s ON public.%s' % (name, table))
                actions.append('dropped policy %s on %s' % (name, table))
        for table in policy_tables():
            if not live_table_exists(db, table):
                continue
            # Without its policies a table is deny-all: RLS stays on, no API role holds anything.
            for role in ROLES:
                if live_role(db, role)[0] and any(live_has_table_privilege(db, role, table, p)
                                              for p in TABLE_PRIVILEGES):
                    db.execute_sql('REVOKE ALL ON public.%s FROM %s' % (table, role))
                    actions.append('revoked %s access to %s' % (role, table))
        if live_schema_exists(db, HELPER_SCHEMA):
            db.execute_sql('DROP SCHEMA %s CASCADE' % HELPER_SCHEMA)
            actions.append('dropped schema %s' % HELPER_SCHEMA)
        if live_schema_exists(db, REQUEST_SCHEMA):
            db.execute_sql('DROP SCHEMA %s CASCADE' % REQUEST_SCHEMA)
            actions.append('dropped schema %s' % REQUEST_SCHEMA)
        # The role is cluster-wide and stays; its rights in this database go with the helpers.
        # The migration history stays locked: uninstalling must not reopen it.
        if _definer(db) is not None and _one(
                db, "SELECT has_table_privilege(%s, 'public.organization_members', 'SELECT')",
                (DEFINER_ROLE,)):
            db.execute_sql('REVOKE ALL ON public.organization_members FROM %s; '
                           'REVOKE USAGE ON SCHEMA public FROM %s' % (DEFINER_ROLE, DEFINER_ROLE))
            actions.append("revoked %s's access to organization_members" % DEFINER_ROLE)
        actions += _uninstall_auth(db)
        sync(db)  # nothing installed now: every table of public deny-all, RLS on
    return actions


def _uninstall_auth(db):
    from peewee import DatabaseError

    actions = []
    for name in AUTH_FUNCTIONS:
        live = live_function(db, 'auth', name)
        if live is not None and live[3] == AUTH_MARK:
            try:
                with db.atomic():
                    db.execute_sql('DROP FUNCTION auth.%s()' % name)
                actions.append('dropped function auth.%s()' % name)
            except DatabaseError:
                pass  # something of the user's (a policy, a view) uses it: keep it
    if live_schema_comment(db, 'auth') == AUTH_MARK and not _one(db, """
            SELECT count(*) FROM pg_depend d JOIN pg_namespace n ON n.oid = d.refobjid
            WHERE d.refclassid = 'pg_namespace'::regclass AND n.nspname = 'auth'"""):
        db.execute_sql('DROP SCHEMA auth')
        actions.append('dropped schema auth')
    return actions


# -- status ------------------------------------------------------------------------------------

def status(db):
    """What is installed, per table and overall, and what is missing.

    {'complete': bool, 'mode': str, 'missing': [str], 'tables': [{'table', 'rls_enabled', 'rls_forced',
    'policies': {cmd: [names]}, 'missing': [str], 'extra': [str]}]}
    """
    from hub.catalog import live_tables

    missing = []
    for role in ROLES:
        exists, bypass = live_role(db, role)
        if not exists:
            missing.append('role %s does not exist' % role)
        elif role == 'service_role' and not bypass:
            missing.append('role service_role lacks BYPASSRLS')
    for name in AUTH_FUNCTIONS:
        if live_function(db, 'auth', name) is None:
            missing.append('function auth.%s() is missing' % name)
    missing += _definer_problems(db)
    citus = on_citus(db)
    owners = _helper_owners(db)
    for name, (_, definer, _, _) in HELPERS.items():
        body = helper_body(name, citus)
        live = live_function(db, HELPER_SCHEMA, name)
        if live is None:
            missing.append('helper %s.%s() is missing' % (HELPER_SCHEMA, name))
            continue
        if owners.get(name) != DEFINER_ROLE:
            missing.append('helper %s.%s() is owned by %s, not %s' % (
                HELPER_SCHEMA, name, owners.get(name), DEFINER_ROLE))
        if bool(live[0]) != definer:
            missing.append('helper %s.%s() should %sbe SECURITY DEFINER'
                           % (HELPER_SCHEMA, name, '' if definer else 'not '))
        if live[1] != helper_config(citus):
            missing.append("helper %s.%s() does not SET %s" % (HELPER_SCHEMA, name,
                                                               ', '.join(helper_config(citus))))
        if live[2] != body:
            missing.append('helper %s.%s() differs from hub.rls (run `hub rls install`)'
                           % (HELPER_SCHEMA, name))
    missing += _pre_request_problems(db)
    if citus:
        missing += ['role %s cannot log in on worker %s, and Citus connects to the workers as '
                    'the current role (run `hub rls install`)' % (role, worker)
                    for worker, roles in sorted(worker_logins(db).items()) for role in roles
                    if live_role(db, role)[0] or ' ' in role]
    missing += _trigger_function_problems(db)
    missing += _rpc_problems(db)
    mode = installed_mode(db) or DEFAULT_MODE
    drift = privilege_drift(db)
    live = live_policy_map(db)
    declared = policies()
    tables = []
    for table in live_tables(db):
        entry = {'table': table, 'rls_enabled': False, 'rls_forced': False,
                 'policies': {cmd: [] for cmd in COMMANDS}, 'missing': [], 'extra': []}
        entry['rls_enabled'], entry['rls_forced'] = live_rls(db, table)
        for (t, name), (cmd, roles, using, check, comment, permissive) in sorted(live.items()):
            if t != table:
                continue
            entry['policies'].setdefault(cmd, []).append(name)
            if (table, name) == ('organization_members', DEFINER_POLICY):
                if comment != _fingerprint(DEFINER_POLICY_SQL) or roles != [DEFINER_ROLE]:
                    entry['missing'].append('policy %s differs from hub.rls (run `hub rls '
                                            'install`)' % name)
                continue
            if (table, name) in MIGRATION_POLICIES:
                role, want_cmd, want_using, want_check = MIGRATION_POLICIES[table, name]
                if (cmd, roles, using, check) != (want_cmd, [role], want_using, want_check):
                    entry['missing'].append('policy %s is not the one its migration made (only '
                                            '%s may use it, for %s)' % (name, role, want_cmd))
                continue
            if table not in declared or declared[table].get(cmd) is None \
                    or name != policy_name(cmd):
                entry['extra'].append('%s (%s, to %s)' % (name, cmd, ', '.join(roles)))
                if permissive:
                    # OR-ed with ours: it can only widen what a caller sees or changes.
                    entry['missing'].append('permissive policy %s is not from hub.rls and widens '
                                            'access; drop it or make it RESTRICTIVE' % name)
            elif comment != _fingerprint(policy_sql(table, cmd, mode, citus)):
                entry['missing'].append('policy %s differs from hub.rls (run `hub rls install`)'
                                        % name)
        if table not in declared:
            entry['missing'].append('no policies are defined for this table in hub.rls')
            if not entry['rls_enabled']:
                # The API roles may be granted any table in the exposed schema (Supabase does).
                entry['missing'].append('row-level security is disabled')
            missing.append('table %s has no model in hub.models, so no policies%s: declare its '
                           'model (a tenant or child table gets its policies from it) and run '
                           '`hub rls install`, or drop it' % (
                               table, '' if entry['rls_enabled'] else
                               ', and row-level security is disabled'))
        else:
            uncovered = []
            if not entry['rls_enabled']:
                entry['missing'].append('row-level security is disabled')
                uncovered.append('row-level security is disabled')
            absent = [cmd for cmd in declared[table] if (table, policy_name(cmd)) not in live]
            for cmd in absent:
                entry['missing'].append('policy %s (%s) is missing' % (policy_name(cmd), cmd))
            if absent:
                uncovered.append('%s of its %d policies %s missing (%s)' % (
                    len(absent), len(declared[table]), 'is' if len(absent) == 1 else 'are',
                    ', '.join(absent)))
            if uncovered:
                # A table a later migration created, that install has not covered yet.
                missing.append('table %s: %s (run `hub rls install`)' % (
                    table, ' and '.join(uncovered)))
            for role in ROLES + (PUBLIC,):
                extra, lacking = drift.get((table, role), ([], []))
                if extra:
                    entry['missing'].append('%s holds %s' % (role, ', '.join(extra)))
                if lacking and live_role(db, role)[0]:
                    entry['missing'].append('%s lacks %s' % (role, ', '.join(lacking)))
        tables.append(entry)
    for table in _missing_tables(db):
        missing.append('table %s is missing (run `hub db migrate`)' % table)
    missing += _audit_lines(db, [t['table'] for t in tables])
    complete = not missing and all(not t['missing'] for t in tables)
    return {'complete': complete, 'mode': mode, 'missing': missing, 'tables': tables}


def _pre_request_problems(db):
    """What differs from PRE_REQUEST: missing, changed, or not executable by an API role."""
    row = _function_facts(db, PRE_REQUEST)
    if row is None:
        return ['function %s (PostgREST db-pre-request) is missing (run `hub rls install`)'
                % PRE_REQUEST]
    config, definer, _, executors = row
    problems = []
    body = _one(db, 'SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure(%s)', (PRE_REQUEST,))
    if definer or body != PRE_REQUEST_BODY or config != TRIGGER_FUNCTION_CONFIG:
        problems.append('function %s differs from hub.rls (run `hub rls install`)' % PRE_REQUEST)
    lacking = [r for r in PRE_REQUEST_ROLES if r not in executors and live_role(db, r)[0]]
    if lacking:
        problems.append('function %s may not be executed by %s (run `hub rls install`)'
                        % (PRE_REQUEST, ', '.join(lacking)))
    return problems


def _audit_lines(db, named):
    """The catalog audit's violations (hub.audit), but for what the table entries above already
    name: row-level security off on a table in public, and the drift of hub's own tables."""
    named = {'%s.%s' % (SCHEMA, t) for t in named}
    return [str(v) for v in violations(db) if not (v.object in named and (
        v.problem.startswith(audit.RLS_OFF) or v.fix == audit.INSTALL_FIX))]


# -- acting as a caller ------------------------------------------------------------------------

@contextlib.contextmanager
def as_role(db, role, claims=None):
    """Act as `role` with `claims` (a dict, or None for none) until the block ends.

    Runs inside a transaction (or a savepoint of the current one): SET LOCAL ROLE and a
    transaction-local request.jwt.claims, both restored on exit; an error in the block rolls
    back to the savepoint, so the outer transaction stays usable. The claims are set as
    PostgREST sets them, then handed to hub_request.pre_request() as PostgREST's db-pre-request
    would: on Citus that is what sends them to the workers, on a single node it changes nothing.
    One code path for every target.
    """
    with db.atomic():
        before_role, before_claims, before_propagate = db.execute_sql(
            "SELECT current_setting('role'), current_setting('request.jwt.claims', true), "
            "current_setting('citus.propagate_set_commands', true)").fetchone()
        try:
            db.execute_sql('SET LOCAL ROLE %s' % _quote(role))
        except Exception as exc:
            cause = str(getattr(exc, '__cause__', None) or exc).strip().splitlines()[0]
            raise RlsError('cannot act as role %s (%s); run `hub rls install`, and grant %s to '
                           'the connecting user if it is not a superuser' % (role, cause, role)) \
                from None
        _set_claims(db, json.dumps(claims) if claims is not None else '')
        yield db
        if before_propagate is not None:
            # Taking the role back must not be sent to the workers' connections of `role`.
            db.execute_sql("SELECT set_config('citus.propagate_set_commands', %s, true)",
                           (before_propagate,))
        db.execute_sql('SET LOCAL ROLE %s' % ('NONE' if before_role == 'none'
                                              else _quote(before_role)))
        _set_claims(db, before_claims or '')


def _set_claims(db, claims):
    """The claims as PostgREST sets them, then sent on as its db-pre-request does."""
    db.execute_sql("SELECT set_config('request.jwt.claims', %s, true)", (claims,))
    db.cursor().execute(SEND_CLAIMS_SQL)


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
