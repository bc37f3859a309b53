"""Memberships the platform can use: a trusted writer's plain insert makes a member, and
`public.create_organization(name, slug)` makes the signed-in caller an organization's OWNER.

    $ hub db migrate        # applies 0008_memberships_the_platform_can_use after 0007

Since 0002 a membership inserted without `accepted_at` was an invitation. The platform's own
"create organization" (Prisma `organization.create({ data: { ..., memberships: { create: {
userId, role: 'OWNER' } } } })` on the server, service_role, a seed script) inserts exactly that,
and its OWNER then saw no organization and could write nothing (42501). Now:

- `accepted_at` defaults to now(): a plain insert by the table's owner or service_role (who
  bypass row-level security) makes an accepted member;
- trigger `organization_members_invite` (BEFORE INSERT, SECURITY INVOKER): an insert by a caller
  under row-level security (a tenant) for anyone but themselves is an invitation, whatever
  `accepted_at` it carries. Built as 0007 builds trigger functions: it checks its table first,
  names its operators' schema, and no API role may execute it;
- `public.create_organization(name text, slug text)` returns the new organization's id and makes
  the caller (the `sub` of the JWT claims) its accepted OWNER, for clients that write under
  row-level security (supabase-js: `supabase.rpc('create_organization', { name, slug })`),
  whose policies let nobody insert an organization. SECURITY DEFINER, owned by
  `hub_org_creator`: NOLOGIN, no SUPERUSER, BYPASSRLS, CREATEROLE nor CREATEDB; its only rights
  are to insert an organization (id, name, slug) and its OWNER membership, through policies of
  its own. search_path is pg_catalog, pg_temp and every name is qualified. EXECUTE is revoked
  from PUBLIC and every API role, then granted to `authenticated` where that role exists
  (`hub rls install` grants it otherwise: the roles of hub.rls.RPCS).

Frozen SQL, like 0001: what this migration builds must not change with the code around it, so
it never imports hub.models.
"""

import importlib

_0007 = importlib.import_module('hub.migrations.0007_trigger_functions_hardened')


def _for_creator(text, *changes):
    """0007's statement `text` for this migration's role and function: 0007's guard role
    becomes hub_org_creator wherever named, then each (old, new) of `changes` is made (0007's
    own _edited: a missing `old` is an error, never a no-op)."""
    return _0007._edited(text.replace('hub_owner_guard', 'hub_org_creator'), *changes)


DEFAULT = r"""
ALTER TABLE public.organization_members ALTER COLUMN accepted_at SET DEFAULT now();
COMMENT ON COLUMN public.organization_members.accepted_at IS
    'When the member accepted; NULL while the membership is an invitation (it grants nothing). '
    'Defaults to now(): an insert by a trusted writer (the owner, service_role, Prisma on the '
    'server) makes an accepted member; a tenant''s insert for anyone else is always an '
    'invitation, which only the invited user accepts.';
"""

# The caller as hub.rls reads it: the transaction's JSON claims first; the legacy per-claim
# setting only when there are none.
CALLER = r"""
    claims pg_catalog.jsonb := nullif(pg_catalog.current_setting('request.jwt.claims', true),
                                      '')::pg_catalog.jsonb;
    caller pg_catalog.text := CASE WHEN claims IS NULL
        THEN nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), '')
        ELSE claims OPERATOR(pg_catalog.->>) 'sub' END;"""

INVITE = r"""
-- SECURITY INVOKER on purpose: row_security_active() must answer for the caller.
CREATE FUNCTION public.hub_membership_invite() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE%(caller)s
BEGIN
    -- Before NEW is read: on any other table its types are the caller's to choose.
    IF TG_RELID OPERATOR(pg_catalog.<>) 'public.organization_members'::pg_catalog.regclass
            OR TG_WHEN OPERATOR(pg_catalog.<>) 'BEFORE' OR TG_OP OPERATOR(pg_catalog.<>) 'INSERT'
            OR TG_LEVEL OPERATOR(pg_catalog.<>) 'ROW' THEN
        RAISE EXCEPTION USING ERRCODE = 'triggered_action_exception',
            MESSAGE = 'hub_membership_invite() is a trigger of public.organization_members '
                      '(BEFORE INSERT, FOR EACH ROW), not of ' || TG_TABLE_SCHEMA || '.'
                      || TG_TABLE_NAME;
    END IF;
    IF pg_catalog.row_security_active(TG_RELID)
            AND NEW.user_id::pg_catalog.text IS DISTINCT FROM caller THEN
        NEW.accepted_at := NULL;  -- an invitation: only the invited user accepts it
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER organization_members_invite
    BEFORE INSERT ON public.organization_members
    FOR EACH ROW EXECUTE FUNCTION public.hub_membership_invite();
"""

CREATE_CREATOR = _for_creator(
    _0007.CREATE_GUARD,
    ("'owns public.hub_keep_an_owner() (hub migration 0007); never log in as it'",
     "'owns public.create_organization() (hub migration 0008); never log in as it'"))

# Insert, nothing else: no SELECT (the function makes the ids, so it needs no RETURNING).
CREATOR_RIGHTS = r"""
GRANT USAGE ON SCHEMA public TO hub_org_creator;
GRANT INSERT (id, name, slug) ON public.organizations TO hub_org_creator;
GRANT INSERT (id, organization_id, user_id, role, accepted_at) ON public.organization_members
    TO hub_org_creator;
CREATE POLICY hub_creator_insert ON public.organizations AS PERMISSIVE FOR INSERT
    TO hub_org_creator WITH CHECK (true);
CREATE POLICY hub_creator_insert ON public.organization_members AS PERMISSIVE FOR INSERT
    TO hub_org_creator WITH CHECK (role = 'OWNER'::public.member_role AND accepted_at IS NOT NULL);
"""

CREATE_ORGANIZATION = r"""
CREATE FUNCTION public.create_organization(name pg_catalog.text, slug pg_catalog.text)
RETURNS pg_catalog.text LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE%(caller)s
    organization pg_catalog.text := public.hub_new_id();
BEGIN
    IF caller IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = 'create_organization needs a signed-in caller: the JWT claims name no sub',
            HINT = 'call it as an authenticated user (supabase.rpc after sign-in)';
    END IF;
    INSERT INTO public.organizations (id, name, slug)
    VALUES (organization, create_organization.name, create_organization.slug);
    INSERT INTO public.organization_members (id, organization_id, user_id, role, accepted_at)
    VALUES (public.hub_new_id(), organization, caller, 'OWNER'::public.member_role,
            pg_catalog.now());
    RETURN organization;
EXCEPTION WHEN foreign_key_violation THEN
    RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
        MESSAGE = 'create_organization: user ' || caller || ' has no row in public.users',
        HINT = 'insert the caller''s profile into users first';
END
$$;
COMMENT ON FUNCTION public.create_organization(pg_catalog.text, pg_catalog.text) IS
    'Creates an organization and makes the caller (the JWT sub) its accepted OWNER; returns its '
    'id. supabase-js: supabase.rpc(''create_organization'', { name, slug })';
"""

# As 0007 hands hub_keep_an_owner() to its guard: as a superuser, or as a CREATEROLE owner
# that grants itself the role (INHERIT and SET on PostgreSQL 16+) and gives it CREATE on
# public for the moment of the transfer.
HANDOVER = _for_creator(
    _0007.HANDOVER,
    ('ALTER FUNCTION public.hub_keep_an_owner() OWNER',
     'ALTER FUNCTION public.create_organization(pg_catalog.text, pg_catalog.text) OWNER'))

# As 0007 revokes EXECUTE on its trigger functions, by name as well as PUBLIC; then the RPC's
# one caller, where that role exists (elsewhere `hub rls install` grants it).
REVOKE = _for_creator(
    _0007.REVOKE,
    ('public.hub_touch_updated_at(), public.hub_membership_consent(),\n'
     '        public.hub_keep_an_owner()',
     'public.hub_membership_invite(),\n'
     '        public.create_organization(pg_catalog.text, pg_catalog.text)'),
    ("'REVOKE ALL ON FUNCTION public.hub_touch_updated_at(), '\n"
     "                'public.hub_membership_consent(), public.hub_keep_an_owner() FROM '",
     "'REVOKE ALL ON FUNCTION public.hub_membership_invite(), '\n"
     "                'public.create_organization(pg_catalog.text, pg_catalog.text) FROM '"),
    ('    END LOOP;\n', """    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        GRANT EXECUTE ON FUNCTION public.create_organization(pg_catalog.text, pg_catalog.text)
            TO authenticated;
    END IF;
"""))

UP = (DEFAULT + INVITE % {'caller': CALLER} + CREATE_CREATOR + CREATOR_RIGHTS
      + CREATE_ORGANIZATION % {'caller': CALLER} + HANDOVER + REVOKE)

DOWN = r"""
DROP FUNCTION IF EXISTS public.create_organization(pg_catalog.text, pg_catalog.text);
DROP POLICY IF EXISTS hub_creator_insert ON public.organization_members;
DROP POLICY IF EXISTS hub_creator_insert ON public.organizations;
REVOKE ALL ON public.organization_members FROM hub_org_creator;
REVOKE ALL ON public.organizations FROM hub_org_creator;
REVOKE USAGE ON SCHEMA public FROM hub_org_creator;
DROP TRIGGER IF EXISTS organization_members_invite ON public.organization_members;
DROP FUNCTION IF EXISTS public.hub_membership_invite();
ALTER TABLE public.organization_members ALTER COLUMN accepted_at DROP DEFAULT;
COMMENT ON COLUMN public.organization_members.accepted_at IS
    'when the invited user accepted; NULL while the membership is an invitation';
"""


def up(migrator, db):
    db.execute_sql(UP)


def down(migrator, db):
    db.execute_sql(DOWN)
