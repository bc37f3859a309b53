"""Memberships are invitations until the invited user accepts them; an organization keeps an OWNER.

    $ hub db migrate        # applies 0002_member_invitations after 0001_initial

`organization_members.accepted_at` is NULL while the membership is an invitation. Only accepted
memberships make a member (the row-level security helpers of hub.rls count no others), so an
organization that invites a user learns nothing about them, and the user nothing about the
organization, until the user accepts. Existing memberships are accepted as of their created_at.

Two triggers keep the rules whoever writes, whether or not `hub rls install` has run:

- `organization_members_consent` (BEFORE UPDATE), for callers under row-level security only
  (tenants; service_role and the tables' owner may repair anything): a membership's id,
  organization_id and user_id never change; only the invited user accepts, the acceptance
  changes nothing else in the row and is stamped with the time of the acceptance; an accepted
  membership stays accepted (leaving is a DELETE).
- `organization_members_keep_an_owner` (a constraint trigger, for everyone): removing, demoting
  or moving the last accepted OWNER of an organization fails, unless the organization itself is
  being deleted. DEFERRABLE: `SET CONSTRAINTS organization_members_keep_an_owner DEFERRED` lets
  a transaction hand ownership over in any order, checked at COMMIT.

Frozen SQL, like 0001: what this migration builds must not change with the code around it.
"""

UP = r"""
ALTER TABLE organization_members ADD COLUMN accepted_at timestamptz;
UPDATE organization_members SET accepted_at = created_at;
COMMENT ON COLUMN organization_members.accepted_at IS
    'when the invited user accepted; NULL while the membership is an invitation';

-- SECURITY INVOKER on purpose: row_security_active() must answer for the caller.
CREATE FUNCTION hub_membership_consent() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    claims jsonb;
    caller text;
BEGIN
    IF NOT pg_catalog.row_security_active(TG_RELID) THEN
        RETURN NEW;
    END IF;
    IF (NEW.id, NEW.organization_id, NEW.user_id)
            IS DISTINCT FROM (OLD.id, OLD.organization_id, OLD.user_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = 'membership ' || OLD.id || ': id, organization_id and user_id cannot change',
            HINT = 'delete the membership and invite the user again';
    END IF;
    IF OLD.accepted_at IS NOT NULL THEN
        IF NEW.accepted_at IS DISTINCT FROM OLD.accepted_at THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = 'membership ' || OLD.id || ' is accepted; accepted_at cannot change',
                HINT = 'to leave the organization, delete the membership';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.accepted_at IS NULL THEN
        RETURN NEW;  -- an invitation still: its organization's OWNER or ADMIN may change the role
    END IF;
    -- The transaction's JSON claims first: a stale session-level claim must not override them.
    claims := nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb;
    caller := coalesce(claims ->> 'sub',
        nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), ''));
    IF caller IS DISTINCT FROM OLD.user_id THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = 'membership ' || OLD.id || ': only the invited user can accept it',
            HINT = 'the invited user accepts by setting accepted_at on their own membership';
    END IF;
    IF NEW.role IS DISTINCT FROM OLD.role THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = 'membership ' || OLD.id || ': accepting an invitation cannot change its '
                      'role (invited as ' || OLD.role::text || ')',
            HINT = 'set only accepted_at; the organization''s OWNER or ADMIN changes roles';
    END IF;
    NEW.accepted_at := pg_catalog.now();
    RETURN NEW;
END
$$;

CREATE TRIGGER organization_members_consent
    BEFORE UPDATE ON organization_members
    FOR EACH ROW EXECUTE FUNCTION hub_membership_consent();

-- SECURITY DEFINER: the check must see every OWNER of the organization, whatever the caller's
-- policies show them (a leaving OWNER no longer sees their organization). Every name is
-- schema-qualified and pg_temp comes last, so nothing a caller creates can stand in for them.
CREATE FUNCTION hub_keep_an_owner() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF OLD.role <> 'OWNER' OR OLD.accepted_at IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.role = 'OWNER' AND NEW.accepted_at IS NOT NULL
            AND NEW.organization_id = OLD.organization_id THEN
        RETURN NULL;
    END IF;
    -- Serialises concurrent removals of an organization's OWNERs. No row: the organization is
    -- being deleted (this is its cascade), and a deleted organization needs no OWNER.
    PERFORM 1 FROM public.organizations o WHERE o.id = OLD.organization_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.organization_members m
                   WHERE m.organization_id = OLD.organization_id AND m.role = 'OWNER'
                     AND m.accepted_at IS NOT NULL) THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation',
            CONSTRAINT = 'organization_members_keep_an_owner',
            MESSAGE = 'organization ' || OLD.organization_id || ' would be left without an OWNER',
            HINT = 'make another member OWNER first (they must have accepted), or delete the '
                   'organization';
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION hub_keep_an_owner() FROM PUBLIC;

CREATE CONSTRAINT TRIGGER organization_members_keep_an_owner
    AFTER UPDATE OR DELETE ON organization_members
    DEFERRABLE INITIALLY IMMEDIATE
    FOR EACH ROW EXECUTE FUNCTION hub_keep_an_owner();
"""

DOWN = r"""
DROP TRIGGER IF EXISTS organization_members_keep_an_owner ON organization_members;
DROP TRIGGER IF EXISTS organization_members_consent ON organization_members;
DROP FUNCTION IF EXISTS hub_keep_an_owner();
DROP FUNCTION IF EXISTS hub_membership_consent();
ALTER TABLE organization_members DROP COLUMN IF EXISTS accepted_at;
"""


def up(migrator, db):
    db.execute_sql(UP)


def down(migrator, db):
    db.execute_sql(DOWN)
