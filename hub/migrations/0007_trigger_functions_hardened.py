"""Trigger functions nobody else can borrow, and an OWNER check that holds under every isolation.

    $ hub db migrate        # applies 0007_trigger_functions_hardened after 0006

Three holes of 0002 and 0003 (issue 19):

- Anyone who may EXECUTE a trigger function may attach it to a table of their own. Supabase's
  default privileges grant EXECUTE on every new function in `public` to anon, authenticated and
  service_role by name, which 0002's `REVOKE ... FROM PUBLIC` left in place. anon attached
  `hub_keep_an_owner()` (SECURITY DEFINER, owned by the migration owner: BYPASSRLS and
  CREATEROLE on Supabase, a superuser elsewhere) to a temp table whose `role` column had a
  pg_temp enum with an implicit cast to text; the function's first comparison called the cast,
  and anon's code ran as the owner. A pinned search_path does not help: casts are found by type.
- So every trigger function of ours now: is executable by nobody but its owner (CREATE TRIGGER
  needs EXECUTE, firing does not); checks which table fired it before it reads NEW or OLD, and
  raises otherwise; compares through schema-qualified operators and types.
- `hub_keep_an_owner()` stays SECURITY DEFINER (it must see every OWNER, even those the caller's
  policies no longer show), but belongs to `hub_owner_guard`: NOLOGIN, no SUPERUSER, BYPASSRLS,
  CREATEROLE nor CREATEDB, allowed to read organization_members and organizations' ids and to
  lock (never change) memberships, through policies of its own when row-level security is on.
  It is not `hub_rls_definer` (hub.rls), whose rights `hub rls uninstall` takes back: the OWNER
  rule must hold with or without row-level security installed.
- Two OWNERs removing each other under REPEATABLE READ left an organization without an OWNER:
  each check read a snapshot in which the other was still OWNER. The check now locks the
  remaining accepted OWNERs (FOR SHARE): it waits for a concurrent removal of any of them and
  then fails (40001 under REPEATABLE READ and SERIALIZABLE; under READ COMMITTED it sees the row
  gone and raises 23514).

Ownership goes to the guard as a superuser, or as a non-superuser CREATEROLE owner (Supabase's
`postgres`): it grants itself the role (with INHERIT and SET on PostgreSQL 16+, so it may later
replace and drop the function) and gives the role CREATE on `public` for the moment of the
transfer only. Frozen SQL, like 0001: what this migration builds must not change with the code
around it, so it never imports hub.models.
"""

import importlib


def _shipped(name):
    """The UP text of an earlier migration: frozen, so its functions are as it created them."""
    return importlib.import_module('hub.migrations.' + name).UP


def _between(text, first, last):
    return text[text.index(first):text.index(last)]


def _edited(text, *changes):
    """`text` with each (old, new) replaced once; a missing `old` is an error, never a no-op."""
    for old, new in changes:
        if old not in text:
            raise RuntimeError('0007: %r is not in the text it edits' % old)
        text = text.replace(old, new, 1)
    return text


_0002 = _shipped('0002_member_invitations')
#: 0002's error for an organization left without an OWNER: clients may match its text.
OWNERLESS = _between(_0002, "        RAISE EXCEPTION USING ERRCODE = 'check_violation'",
                     '    END IF;\n    RETURN NULL;\nEND')

# Cluster-wide: another database's migration may create it at the same moment.
CREATE_GUARD = r"""
DO $hub_do$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'hub_owner_guard') THEN
        CREATE ROLE hub_owner_guard NOLOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE
            NOBYPASSRLS;
        COMMENT ON ROLE hub_owner_guard IS
            'owns public.hub_keep_an_owner() (hub migration 0007); never log in as it';
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $hub_do$;
"""

# What the guard may do: read the memberships and the organizations' ids, lock memberships.
# A row lock needs UPDATE on a column and, under row-level security, an UPDATE policy that shows
# the row; WITH CHECK (false) refuses every row an UPDATE would write.
GUARD_RIGHTS = r"""
GRANT USAGE ON SCHEMA public TO hub_owner_guard;
GRANT SELECT, UPDATE (id) ON public.organization_members TO hub_owner_guard;
GRANT SELECT (id) ON public.organizations TO hub_owner_guard;
CREATE POLICY hub_guard_select ON public.organization_members AS PERMISSIVE FOR SELECT
    TO hub_owner_guard USING (true);
CREATE POLICY hub_guard_lock ON public.organization_members AS PERMISSIVE FOR UPDATE
    TO hub_owner_guard USING (true) WITH CHECK (false);
CREATE POLICY hub_guard_select ON public.organizations AS PERMISSIVE FOR SELECT
    TO hub_owner_guard USING (true);
"""

# 0002's consent trigger, checking its table first and naming its types' schema.
CONSENT = _edited(
    _between(_0002, '-- SECURITY INVOKER on purpose', 'CREATE TRIGGER organization_members_consent'),
    ('CREATE FUNCTION hub_membership_consent()',
     'CREATE OR REPLACE FUNCTION public.hub_membership_consent()'),
    ('    claims jsonb;\n    caller text;\nBEGIN\n', """    claims pg_catalog.jsonb;
    caller pg_catalog.text;
BEGIN
    -- Before NEW or OLD is read: on any other table their types are the caller's to choose.
    IF TG_RELID OPERATOR(pg_catalog.<>) 'public.organization_members'::pg_catalog.regclass
            OR TG_WHEN OPERATOR(pg_catalog.<>) 'BEFORE' OR TG_OP OPERATOR(pg_catalog.<>) 'UPDATE'
            OR TG_LEVEL OPERATOR(pg_catalog.<>) 'ROW' THEN
        RAISE EXCEPTION USING ERRCODE = 'triggered_action_exception',
            MESSAGE = 'hub_membership_consent() is a trigger of public.organization_members '
                      '(BEFORE UPDATE, FOR EACH ROW), not of ' || TG_TABLE_SCHEMA || '.'
                      || TG_TABLE_NAME;
    END IF;
"""),
    ("'')::jsonb;", "'')::pg_catalog.jsonb;"),
    ("claims ->> 'sub'", "claims OPERATOR(pg_catalog.->>) 'sub'"),
    ('OLD.role::text', 'OLD.role::pg_catalog.text'))

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION public.hub_touch_updated_at() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Only a table of ours: the types of NEW and OLD are then ones we made.
    IF TG_TABLE_SCHEMA OPERATOR(pg_catalog.<>) 'public' OR TG_WHEN OPERATOR(pg_catalog.<>) 'BEFORE'
            OR TG_OP OPERATOR(pg_catalog.<>) 'UPDATE' OR TG_LEVEL OPERATOR(pg_catalog.<>) 'ROW' THEN
        RAISE EXCEPTION USING ERRCODE = 'triggered_action_exception',
            MESSAGE = 'hub_touch_updated_at() is a trigger of the tables in schema public '
                      '(BEFORE UPDATE, FOR EACH ROW), not of ' || TG_TABLE_SCHEMA || '.'
                      || TG_TABLE_NAME;
    END IF;
    IF NEW.updated_at::pg_catalog.timestamptz IS NOT DISTINCT FROM
            OLD.updated_at::pg_catalog.timestamptz THEN
        NEW.updated_at := pg_catalog.now();
    END IF;
    RETURN NEW;
END
$$;

%(consent)s
-- SECURITY DEFINER: the check must see every OWNER of the organization, whatever the caller's
-- policies show them (a leaving OWNER no longer sees their organization).
CREATE OR REPLACE FUNCTION public.hub_keep_an_owner() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Before NEW or OLD is read: on any other table their types are the caller's to choose.
    IF TG_RELID OPERATOR(pg_catalog.<>) 'public.organization_members'::pg_catalog.regclass
            OR TG_WHEN OPERATOR(pg_catalog.<>) 'AFTER' OR TG_LEVEL OPERATOR(pg_catalog.<>) 'ROW'
            OR TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        RAISE EXCEPTION USING ERRCODE = 'triggered_action_exception',
            MESSAGE = 'hub_keep_an_owner() is a trigger of public.organization_members '
                      '(AFTER UPDATE OR DELETE, FOR EACH ROW), not of ' || TG_TABLE_SCHEMA
                      || '.' || TG_TABLE_NAME;
    END IF;
    IF OLD.role OPERATOR(pg_catalog.<>) 'OWNER'::public.member_role OR OLD.accepted_at IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE'
            AND NEW.role OPERATOR(pg_catalog.=) 'OWNER'::public.member_role
            AND NEW.accepted_at IS NOT NULL
            AND NEW.organization_id OPERATOR(pg_catalog.=) OLD.organization_id THEN
        RETURN NULL;
    END IF;
    -- No row: the organization is being deleted (this is its cascade), and a deleted
    -- organization needs no OWNER.
    PERFORM 1 FROM public.organizations o WHERE o.id OPERATOR(pg_catalog.=) OLD.organization_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- Locked: a concurrent removal or demotion of one of them makes this wait for it, then
    -- fail (40001) or, under READ COMMITTED, no longer see that OWNER. Reading a snapshot alone
    -- let two OWNERs remove each other under REPEATABLE READ.
    PERFORM 1 FROM public.organization_members m
    WHERE m.organization_id OPERATOR(pg_catalog.=) OLD.organization_id
      AND m.role OPERATOR(pg_catalog.=) 'OWNER'::public.member_role
      AND m.accepted_at IS NOT NULL
    FOR SHARE OF m;
    IF NOT FOUND THEN
%(ownerless)s    END IF;
    RETURN NULL;
END
$$;
"""

HANDOVER = r"""
DO $hub_do$
DECLARE
    superuser boolean := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
BEGIN
    IF NOT superuser THEN
        IF NOT pg_catalog.pg_has_role(current_user, 'hub_owner_guard', 'USAGE') THEN
            -- SET for the transfer; INHERIT so a later migration (or this one's down) may
            -- replace or hand back the function as its owner.
            EXECUTE 'GRANT hub_owner_guard TO CURRENT_USER' || CASE
                WHEN pg_catalog.current_setting('server_version_num')::int >= 160000
                THEN ' WITH INHERIT TRUE, SET TRUE' ELSE '' END;
        END IF;
        GRANT CREATE ON SCHEMA public TO hub_owner_guard;
    END IF;
    ALTER FUNCTION public.hub_keep_an_owner() OWNER TO hub_owner_guard;
    IF NOT superuser THEN
        REVOKE CREATE ON SCHEMA public FROM hub_owner_guard;
    END IF;
END $hub_do$;
"""

# By name as well as PUBLIC: Supabase's default privileges grant each API role EXECUTE itself.
REVOKE = r"""
DO $hub_do$
DECLARE
    api_role pg_catalog.text;
BEGIN
    REVOKE ALL ON FUNCTION public.hub_touch_updated_at(), public.hub_membership_consent(),
        public.hub_keep_an_owner() FROM PUBLIC;
    FOR api_role IN SELECT rolname FROM pg_catalog.pg_roles
                    WHERE rolname IN ('anon', 'authenticated', 'service_role') ORDER BY 1 LOOP
        EXECUTE 'REVOKE ALL ON FUNCTION public.hub_touch_updated_at(), '
                'public.hub_membership_consent(), public.hub_keep_an_owner() FROM '
                || pg_catalog.quote_ident(api_role);
    END LOOP;
END $hub_do$;
"""

UP = CREATE_GUARD + GUARD_RIGHTS + FUNCTIONS % {'consent': CONSENT, 'ownerless': OWNERLESS} + HANDOVER + REVOKE


# 0002's and 0003's functions again, owned by the one who reverts; EXECUTE as 0002 left it
# (the invoker functions to PUBLIC), never again to the API roles by name.
DOWN = ('ALTER FUNCTION public.hub_keep_an_owner() OWNER TO CURRENT_USER;\n'
        + _shipped('0003_pin_trigger_search_path')
        + _between(_0002, 'CREATE FUNCTION hub_membership_consent()',
                   'CREATE TRIGGER organization_members_consent')
        .replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION', 1)
        + _between(_0002, '-- SECURITY DEFINER: the check', 'REVOKE ALL ON FUNCTION')
        .replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION', 1)
        + r"""
GRANT EXECUTE ON FUNCTION public.hub_touch_updated_at(), public.hub_membership_consent() TO PUBLIC;

DROP POLICY IF EXISTS hub_guard_select ON public.organizations;
DROP POLICY IF EXISTS hub_guard_lock ON public.organization_members;
DROP POLICY IF EXISTS hub_guard_select ON public.organization_members;
REVOKE ALL ON public.organizations FROM hub_owner_guard;
REVOKE ALL ON public.organization_members FROM hub_owner_guard;
REVOKE USAGE ON SCHEMA public FROM hub_owner_guard;
""")


def up(migrator, db):
    db.execute_sql(UP)


def down(migrator, db):
    db.execute_sql(DOWN)
