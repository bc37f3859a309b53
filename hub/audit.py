"""Security invariants read from the live catalog: what an API role can reach, whoever made it.

    >>> import hub.connection, hub.audit, hub.rls
    >>> database = hub.connection.open_database(hub.connection.resolve_url())
    >>> [str(v) for v in hub.audit.violations(database, hub.rls)]  # one line each; [] if secured
    []

hub.rls installs what the models imply, object by object; this module checks the other way
round. It reads every schema anon, authenticated, service_role (hub.rls.ROLES) or PUBLIC has
USAGE on, plus `public` and the schemas PostgREST exposes (`pgrst.db_schemas`), and reports each
object there that breaks an invariant, whether hub, a later migration, or someone with psql
made it:

- a table without row-level security (in an exposed schema always, elsewhere once an API role
  holds any privilege on it); a view an API role can use that is not `security_invoker` (it
  runs as its owner and bypasses RLS); a materialized view or foreign table an API role can use
  (neither can have RLS);
- a privilege of an API role beyond what the policy model allows: on hub's tables
  hub.rls.privilege_drift decides (and a column hub.models does not declare allows nothing to
  the tenants); any other table, sequence, or column allows nothing; CREATE on a reachable
  schema; USAGE on hub's helper schema for anon;
- a SECURITY DEFINER function an API role can execute, unless hub.rls.HELPERS (for the roles
  install grants) or hub.rls.RPCS (for the roles listed there) names it;
- a SECURITY DEFINER function, in any schema but the platform's, owned by a superuser or a role
  with BYPASSRLS or CREATEROLE;
- a trigger function (trigger or event_trigger) an API role can execute (a trigger fires
  without EXECUTE; a caller holding it can attach the function to a table of their own).

What the platform vendor owns is not checked: Supabase's schemas (VENDOR_SCHEMAS, the list its
own database linter, splinter, leaves out) and every object that belongs to an extension. The
project cannot change them, and Supabase answers for them. `hub rls status`, `hub rls verify`,
`hub db check`, and the ends of `hub rls install` and `hub db migrate` all call violations();
docs/rls.md ("What the audit checks") has each rule, its reason and its fix.

The policy model is an argument, not an import (hub.rls sits above this module and calls it):
`hub.rls.violations(db)` is `violations(db, hub.rls)`.
"""
import collections

from hub.catalog import API_ROLES as ROLES
from hub.catalog import HISTORY_TABLE, PUBLIC, SCHEMA, TABLE_PRIVILEGES

#: Schemas the platform vendor owns (Supabase's, as its linter splinter excludes them) besides
#: PostgreSQL's own: the project cannot change what is in them.
VENDOR_SCHEMAS = (
    '_timescaledb_cache', '_timescaledb_catalog', '_timescaledb_config', '_timescaledb_internal',
    'auth', 'cron', 'extensions', 'graphql', 'graphql_public', 'net', 'pgbouncer', 'pgroonga',
    'pgsodium', 'pgsodium_masks', 'pgtle', 'realtime', 'repack', 'storage', 'supabase_functions',
    'supabase_migrations', 'tiger', 'topology', 'vault')
#: PostgreSQL's own schemas (pg_toast* and pg_temp* are left out by pattern).
SYSTEM_SCHEMAS = ('pg_catalog', 'information_schema')
#: The roles a request runs as, and PUBLIC (every role, present and future).
API_ROLES = ROLES + (PUBLIC,)
#: PostgREST's login role, whose settings may name the exposed schemas.
AUTHENTICATOR = 'authenticator'
_REVOKE_FROM = 'PUBLIC, %s' % ', '.join(ROLES)
#: How a table without row-level security is reported, and the fix for hub's own tables.
RLS_OFF = 'row-level security is off'
INSTALL_FIX = 'run `hub rls install`'
_KINDS = {'r': 'table', 'p': 'table', 'v': 'view', 'm': 'materialized view',
          'f': 'foreign table', 'S': 'sequence'}


class Violation(collections.namedtuple('Violation', 'object problem fix repair')):
    """One broken invariant: the object's qualified name, what is wrong, and the fix; `repair`
    is the statement `hub rls install` runs for it (None: it needs a person's decision)."""

    __slots__ = ()

    def __new__(cls, object, problem, fix, repair=None):
        return super().__new__(cls, object, problem, fix, repair)

    def __str__(self):
        return '%s: %s; fix: %s' % self[:3]


def _rows(db, sql, params=()):
    return db.execute_sql(sql, params).fetchall()


def exposed_schemas(db):
    """`public` and the schemas PostgREST serves (`pgrst.db_schemas` of the database, or of
    the authenticator role in it), in that order."""
    names = ['public']
    for (config,) in _rows(db, """
            SELECT unnest(s.setconfig) FROM pg_db_role_setting s
            WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database
                                        WHERE datname = current_database()))
              AND s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = %s))""",
                           (AUTHENTICATOR,)):
        key, _, value = config.partition('=')
        if key == 'pgrst.db_schemas':
            names += [n.strip().strip('"') for n in value.split(',') if n.strip()]
    return list(dict.fromkeys(names))


def _held(kind, oid_column, acl_column, owner_column, privileges, check):
    """SQL: an array of 'role PRIVILEGE' an API role (through membership too) or PUBLIC holds
    on the object; `check` is the has_*_privilege function."""
    return """ARRAY(
        SELECT r.rolname || ' ' || priv FROM api r, unnest(ARRAY[%(privs)s]) priv
        WHERE %(check)s(r.rolname, %(oid)s, priv)
        UNION ALL
        SELECT 'PUBLIC ' || a.privilege_type
        FROM aclexplode(coalesce(%(acl)s, acldefault('%(kind)s', %(owner)s))) a
        WHERE a.grantee = 0)""" % {
        'privs': ', '.join("'%s'" % p for p in privileges), 'check': check, 'oid': oid_column,
        'acl': acl_column, 'kind': kind, 'owner': owner_column}


_API = "api AS (SELECT rolname FROM pg_roles WHERE rolname = ANY (%(roles)s))"
_USER_SCHEMA = """n.nspname <> ALL (%(skip)s) AND n.nspname NOT LIKE 'pg\\_toast%%'
                  AND n.nspname NOT LIKE 'pg\\_temp\\_%%'"""
#: SQL: the object is not an extension's (its owner is the extension's script, not the project).
NOT_EXTENSION = """NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                   WHERE e.classid = %(class)s::pg_catalog.regclass AND e.objid = %(oid)s
                     AND e.deptype = 'e')"""
#: SQL: function p's signature in schema n, written out as hub.rls.RPCS names functions
#: (schema.name(argument types)), whatever the search_path.
SIGNATURE = """pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname)
    || '(' || pg_catalog.array_to_string(ARRAY(
        SELECT pg_catalog.format_type(t, NULL) FROM unnest(p.proargtypes::oid[])
        WITH ORDINALITY u(t, i) ORDER BY i), ', ') || ')'"""

_SCHEMAS_SQL = """
WITH %s
SELECT n.nspname, %s AS held FROM pg_namespace n WHERE %s ORDER BY n.nspname""" % (
    _API, _held('n', 'n.oid', 'n.nspacl', 'n.nspowner', ('USAGE', 'CREATE'),
                'has_schema_privilege'), _USER_SCHEMA)

_RELATIONS_SQL = """
WITH %s
SELECT n.nspname, c.relname, c.relkind, c.relrowsecurity,
       coalesce(lower(c.reloptions::text)::text[] && ARRAY['security_invoker=1',
                'security_invoker=true', 'security_invoker=yes', 'security_invoker=on'], false),
       CASE WHEN c.relkind = 'S' THEN %s ELSE %s END,
       ARRAY(SELECT r.rolname || ' ' || p || ' ' || quote_ident(a.attname)
             FROM pg_attribute a, api r, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attacl IS NOT NULL AND has_column_privilege(r.rolname, c.oid, a.attnum, p)
               AND NOT has_table_privilege(r.rolname, c.oid, p)
             UNION ALL
             SELECT 'PUBLIC ' || x.privilege_type || ' ' || quote_ident(a.attname)
             FROM pg_attribute a, aclexplode(a.attacl) x
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND x.grantee = 0)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY (%%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND %s
ORDER BY n.nspname, c.relname""" % (
    _API, _held('s', 'c.oid', 'c.relacl', 'c.relowner', ('USAGE', 'SELECT', 'UPDATE'),
                'has_sequence_privilege'),
    _held('r', 'c.oid', 'c.relacl', 'c.relowner', TABLE_PRIVILEGES, 'has_table_privilege'),
    NOT_EXTENSION % {'class': "'pg_class'", 'oid': 'c.oid'})

# The signature is written out (schema.name(argument types)) whatever the search_path, as
# hub.rls.RPCS names its functions.
_FUNCTIONS_SQL = """
WITH %s
SELECT n.nspname, %s,
       p.prosecdef, p.prorettype IN ('pg_catalog.trigger'::regtype,
                                     'pg_catalog.event_trigger'::regtype),
       o.rolname, o.rolsuper, o.rolbypassrls, o.rolcreaterole, %s
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_roles o ON o.oid = p.proowner
WHERE %s AND p.prokind IN ('f', 'p') AND (p.prosecdef OR n.nspname = ANY (%%(schemas)s))
  AND %s
ORDER BY 2""" % (
    _API, SIGNATURE, _held('f', 'p.oid', 'p.proacl', 'p.proowner', ('EXECUTE',), 'has_function_privilege'),
    _USER_SCHEMA, NOT_EXTENSION % {'class': "'pg_proc'", 'oid': 'p.oid'})

# anon and authenticated on the columns of hub's tables: a column hub.models does not declare
# allows them nothing (a table grant covers every column, the ones added later too).
_COLUMNS_SQL = """
SELECT c.relname, a.attname, ARRAY(
    SELECT r || ' ' || p FROM unnest(%(tenants)s::text[]) r,
        unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p
    WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)
      AND has_column_privilege(r, c.oid, a.attnum, p))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = %(schema)s AND c.relname = ANY (%(tables)s)"""


def _roles_and_privileges(held):
    """{'anon': ['SELECT', ...], ...} from ['anon SELECT', ...] (roles in API_ROLES order)."""
    by_role = collections.OrderedDict()
    for entry in sorted(held, key=lambda e: (API_ROLES.index(e.split(' ')[0]), e)):
        role, _, privilege = entry.partition(' ')
        by_role.setdefault(role, [])
        if privilege not in by_role[role]:
            by_role[role].append(privilege)
    return by_role


def _who(by_role):
    return '; '.join('%s holds %s' % (role, ', '.join(privileges))
                     for role, privileges in by_role.items())


def _reachable(held):
    return any(entry.endswith(' USAGE') for entry in held)


def secured_schemas(policy):
    """The schemas `hub rls install` secures: there it runs the repairs itself (REVOKEs)."""
    return (SCHEMA, policy.HELPER_SCHEMA)


def _quote(name):
    return name if name.isidentifier() and name == name.lower() else \
        '"%s"' % name.replace('"', '""')


def _qualified(schema, name):
    return '%s.%s' % (_quote(schema), _quote(name))


def violations(db, policy):
    """Every broken invariant, as Violation(object, problem, fix, repair); [] on a secured
    database. `policy` is the policy model: hub.rls (its ROLES, HELPER_SCHEMA, HELPERS,
    HELPER_ROLES, RPCS, policy_tables(), model_columns(), privilege_drift()).

    A handful of catalog queries, whatever the database holds (a few milliseconds on a seeded
    hub database: docs/rls.md, "What the audit checks").
    """
    skip = list(SYSTEM_SCHEMAS + VENDOR_SCHEMAS)
    params = {'roles': list(ROLES), 'skip': skip}
    secured = secured_schemas(policy)
    exposed = [s for s in exposed_schemas(db) if s not in skip]
    found = []
    reachable = []
    for schema, held in _rows(db, _SCHEMAS_SQL, params):
        if not _reachable(held) and schema not in exposed:
            continue
        reachable.append(schema)
        by_role = _roles_and_privileges(held)
        create = collections.OrderedDict((r, ['CREATE']) for r, p in by_role.items()
                                         if 'CREATE' in p)
        if create:
            revoke = 'REVOKE CREATE ON SCHEMA %s FROM %s' % (_quote(schema), _REVOKE_FROM)
            found.append(Violation(
                'schema %s' % _quote(schema), '%s: an API role may create objects in a schema '
                'it reaches (a function or table that shadows or joins what runs there)'
                % _who(create), revoke, revoke if schema in secured else None))
        if schema == policy.HELPER_SCHEMA:
            usage = [r for r, p in by_role.items()
                     if 'USAGE' in p and r not in policy.HELPER_ROLES]
            if usage:
                revoke = 'REVOKE USAGE ON SCHEMA %s FROM %s' % (schema, ', '.join(usage))
                found.append(Violation(
                    'schema %s' % schema, '%s hold%s USAGE on the policy helpers\' schema, which '
                    'only %s need' % (', '.join(usage), 's' if len(usage) == 1 else '',
                                      ', '.join(policy.HELPER_ROLES)), revoke, revoke))
    params['schemas'] = reachable
    found += _relations(db, policy, params, exposed, secured)
    found += _columns(db, policy)
    found += _functions(db, policy, params, secured)
    return found


def _relations(db, policy, params, exposed, secured):
    found = []
    ours = set(policy.policy_tables()) | {HISTORY_TABLE}
    drift = policy.privilege_drift(db)
    for schema, name, relkind, rls_on, invoker, held, column_held in _rows(
            db, _RELATIONS_SQL, params):
        qualified = _qualified(schema, name)
        kind = _KINDS[relkind]
        by_role = _roles_and_privileges(held + [' '.join(e.split(' ')[:2]) + ' (%s)'
                                                % e.split(' ', 2)[2] for e in column_held])
        revoke = 'REVOKE ALL ON %s%s FROM %s' % ('SEQUENCE ' if relkind == 'S' else '',
                                                 qualified, _REVOKE_FROM)
        if relkind in 'rp' and not rls_on and (schema in exposed or by_role):
            found.append(Violation(
                qualified, RLS_OFF + '%s' % (
                    ' (%s)' % _who(by_role) if by_role else ', in a schema the API serves'),
                INSTALL_FIX if schema == SCHEMA and name in ours else
                'ALTER TABLE %s ENABLE ROW LEVEL SECURITY, then declare its model in hub.models '
                'and run `hub rls install` (or drop it)' % qualified))
        if schema == SCHEMA and name in ours:
            extra = {role: drift[name, role][0] for role in API_ROLES
                     if (name, role) in drift and drift[name, role][0]}
            if extra:
                found.append(Violation(
                    qualified, '%s beyond what the policies are written for%s' % (
                        _who(extra), " (the migration history is the owner's alone)"
                        if name == HISTORY_TABLE else ''), INSTALL_FIX))
            continue
        if not by_role:
            continue
        if relkind == 'v':
            if invoker:
                continue  # runs as the caller: the base tables' policies and grants apply
            found.append(Violation(
                qualified, 'view runs as its owner and bypasses row-level security (%s)'
                % _who(by_role), 'ALTER VIEW %s SET (security_invoker = on), or %s'
                % (qualified, revoke)))
        elif relkind in 'mf':
            found.append(Violation(
                qualified, '%s cannot have row-level security (%s)' % (kind, _who(by_role)),
                revoke))
        elif relkind == 'S':
            found.append(Violation(
                qualified, '%s on a sequence (no model needs one)' % _who(by_role), revoke,
                revoke if schema in secured else None))
        else:
            found.append(Violation(
                qualified, '%s on a %s no model in hub.models allows' % (_who(by_role), kind),
                '%s, or declare its model in hub.models and run `hub rls install`' % revoke))
    return found


def _columns(db, policy):
    """anon/authenticated privileges on columns of hub's tables that hub.models leaves out."""
    tables = list(policy.policy_tables())
    found = []
    for table, column, held in _rows(db, _COLUMNS_SQL, {
            'tenants': ['anon', 'authenticated'], 'schema': SCHEMA, 'tables': tables}):
        if not held or column in policy.model_columns(table):
            continue
        qualified = '%s.%s' % (_qualified(SCHEMA, table), _quote(column))
        by_role = _roles_and_privileges(held)
        found.append(Violation(
            qualified, '%s on a column hub.models does not declare (a table grant covers '
            'columns added later)' % _who(by_role),
            'declare it in hub.models and run `hub rls install`, or drop it, or narrow the '
            'table grant to the declared columns (REVOKE SELECT ON %s FROM %s, then GRANT '
            'SELECT (columns...))' % (_qualified(SCHEMA, table), ', '.join(by_role))))
    return found


def _functions(db, policy, params, secured):
    found = []
    reachable = set(params['schemas'])
    rpcs = policy.RPCS
    for schema, signature, definer, trigger, owner, superuser, bypass, createrole, held in \
            _rows(db, _FUNCTIONS_SQL, params):
        runners = list(_roles_and_privileges(held))
        if definer:
            powers = [p for p, has in (('SUPERUSER', superuser), ('BYPASSRLS', bypass),
                                       ('CREATEROLE', createrole)) if has]
            if powers:
                found.append(Violation(
                    signature, 'SECURITY DEFINER, owned by %s (%s): whoever gets code into it '
                    'runs with that power' % (owner, ', '.join(powers)),
                    'ALTER FUNCTION %s OWNER TO a NOLOGIN role holding only what it needs'
                    % signature))
        if schema not in reachable or not runners:
            continue
        if definer:
            allowed = ()
            helper = (schema == policy.HELPER_SCHEMA and signature.endswith('()')
                      and signature[len(schema) + 1:-2] in policy.HELPERS)
            if helper:
                allowed = policy.HELPER_ROLES
            elif signature in rpcs:
                allowed = tuple(rpcs[signature][0])
            extra = [r for r in runners if r not in allowed]
            if extra:
                revoke = 'REVOKE EXECUTE ON FUNCTION %s FROM %s' % (signature, ', '.join(
                    r for r in API_ROLES if r not in allowed))
                found.append(Violation(
                    signature, 'SECURITY DEFINER%s, executable by %s: it runs as %s for them'
                    % (' trigger function' if trigger else '', ', '.join(extra), owner),
                    revoke + ('' if trigger or helper else ' (or document it in hub.rls.RPCS)'),
                    revoke if schema in secured else None))
        elif trigger:
            revoke = 'REVOKE EXECUTE ON FUNCTION %s FROM %s' % (signature, _REVOKE_FROM)
            found.append(Violation(
                signature, 'trigger function executable by %s (a trigger fires without EXECUTE; '
                'a caller holding it can attach it to a table of their own)'
                % ', '.join(runners), revoke, revoke if schema in secured else None))
    return found
