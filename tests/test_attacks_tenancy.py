"""Membership needs the invited user's consent, and an organization always keeps an OWNER.

Every attack runs as a tenant would through PostgREST (`api_for`: a login role that is neither
owner nor superuser, SET LOCAL ROLE authenticated + JWT claims per transaction).
"""
import contextlib
import json
import threading
import time

import psycopg2
import pytest

from hub import graph, rls, workflows
from hub.ids import new_id
from hub.models import WorkflowTemplate
from hub.rules import RuleViolation

DENIED = '42501'
OWNERLESS = '23514'


@pytest.fixture
def world(database, db_url, api_for):
    """Organization A (OWNER ada, ADMIN bob, MEMBER cy), organization B (OWNER eve) with a
    public template made by eve (how a stranger's user id leaks), organization C (OWNER ida),
    and zed, who is in no organization."""
    rls.install(database)
    ids = {k: new_id() for k in ('A', 'B', 'C', 'ada', 'bob', 'cy', 'eve', 'ida', 'zed', 'tpl')}
    for org in ('A', 'B', 'C'):
        database.execute_sql('INSERT INTO organizations (id, name, slug) VALUES (%s, %s, %s)',
                             (ids[org], 'Org ' + org, 'org-%s' % ids[org]))
    for user in ('ada', 'bob', 'cy', 'eve', 'ida', 'zed'):
        database.execute_sql('INSERT INTO users (id, email, name) VALUES (%s, %s, %s)',
                             (ids[user], '%s@%s.example' % (user, ids[user]), user.title()))
    for org, user, role in (('A', 'ada', 'OWNER'), ('A', 'bob', 'ADMIN'), ('A', 'cy', 'MEMBER'),
                            ('B', 'eve', 'OWNER'), ('C', 'ida', 'OWNER')):
        ids['m_' + user] = new_id()
        database.execute_sql('INSERT INTO organization_members (id, organization_id, user_id, '
                             'role, accepted_at) VALUES (%s, %s, %s, %s, now())',
                             (ids['m_' + user], ids[org], ids[user], role))
    database.execute_sql(
        "INSERT INTO workflow_templates (id, name, description, category, nodes, edges, "
        "is_public, organization_id, created_by) VALUES (%s, 'Public', 'd', 'SALES', '[]', '[]', "
        "true, %s, %s)", (ids['tpl'], ids['B'], ids['eve']))
    return World(ids, api_for(db_url), database)


class World:
    def __init__(self, ids, api, database):
        self.ids, self.api, self.database = ids, api, database

    def __getitem__(self, name):
        return self.ids[name]

    def run(self, who, sql, *params):
        """`sql` as user `who` ('service' for service_role), one committed transaction."""
        if who == 'service':
            return self.api.run(sql, params, role='service_role')
        return self.api.run(sql, params, user=self.ids[who])

    def refused(self, who, sql, *params):
        """(SQLSTATE, message) of a statement that must fail."""
        with pytest.raises(psycopg2.Error) as info:
            self.run(who, sql, *params)
        return info.value.pgcode, info.value.diag.message_primary

    def invite(self, who, user, org='A', role='MEMBER'):
        membership = new_id()
        assert self.run(who, 'INSERT INTO organization_members (id, organization_id, user_id, '
                             'role) VALUES (%s, %s, %s, %s)',
                        membership, self.ids[org], self.ids[user], role) == 1
        return membership

    def memberships(self):
        return self.database.execute_sql(
            'SELECT id, organization_id, user_id, role::text, accepted_at IS NOT NULL '
            'FROM organization_members ORDER BY id').fetchall()

    def profile(self, who, user):
        return self.run(who, 'SELECT email, name FROM users WHERE id = %s', self.ids[user])


# -- the disclosure attack ---------------------------------------------------------------------

def test_an_owner_cannot_read_a_strangers_profile_by_enrolling_them(world):
    """The attack as reported: one transaction, rolled back, no trace."""
    with contextlib.closing(world.api.connect()) as conn:
        with conn, conn.cursor() as cur:
            cur.execute('SET LOCAL ROLE authenticated')
            cur.execute("SELECT set_config('request.jwt.claims', %s, true)",
                        (json.dumps({'sub': world['ada'], 'role': 'authenticated'}),))
            cur.execute('SELECT created_by FROM workflow_templates WHERE id = %s', (world['tpl'],))
            (stranger,) = cur.fetchone()
            assert stranger == world['eve']
            cur.execute("INSERT INTO organization_members (id, organization_id, user_id, role) "
                        "VALUES (%s, %s, %s, 'MEMBER')", (new_id(), world['A'], stranger))
            cur.execute('SELECT email, name FROM users WHERE id = %s', (stranger,))
            assert cur.fetchall() == []
            # Nor through the membership: an invitation is no membership.
            cur.execute('SELECT count(*) FROM users u JOIN organization_members m '
                        'ON m.user_id = u.id WHERE m.organization_id = %s', (world['A'],))
            assert cur.fetchone() == (3,)
            conn.rollback()


def test_nobody_adds_an_accepted_membership_for_someone_else(world):
    before = world.memberships()
    # Whatever accepted_at it carries, it is an invitation (trigger organization_members_invite,
    # migration 0008): eve learns of it, A learns nothing of eve.
    for who in ('ada', 'bob'):
        for accepted in ('now()', "'2020-01-01'"):
            membership = new_id()
            assert world.run(who, 'INSERT INTO organization_members (id, organization_id, '
                                  'user_id, role, accepted_at) VALUES (%%s, %%s, %%s, '
                                  "'MEMBER', %s)" % accepted,
                             membership, world['A'], world['eve']) == 1
            assert world.database.execute_sql(
                'SELECT accepted_at FROM organization_members WHERE id = %s',
                (membership,)).fetchone() == (None,)
            assert world.profile(who, 'eve') == []
            world.database.execute_sql('DELETE FROM organization_members WHERE id = %s',
                                       (membership,))
    # Nor themselves into an organization they are not in, invited or not.
    for accepted in ('NULL', 'now()'):
        assert world.refused('zed', 'INSERT INTO organization_members (id, organization_id, '
                                    "user_id, role, accepted_at) VALUES (%%s, %%s, %%s, 'MEMBER', "
                                    '%s)' % accepted, new_id(), world['A'], world['zed'])[0] \
            == DENIED
    assert world.memberships() == before


def test_nobody_accepts_an_invitation_for_the_invited_user(world):
    invitation = world.invite('ada', 'zed')
    for who in ('ada', 'bob'):
        code, message = world.refused(who, 'UPDATE organization_members SET accepted_at = now() '
                                           'WHERE id = %s', invitation)
        assert (code, message) == (DENIED, 'membership %s: only the invited user can accept it'
                                   % invitation)
    # INSERT ... ON CONFLICT DO UPDATE is an UPDATE too.
    assert world.refused('ada', "INSERT INTO organization_members (id, organization_id, user_id, "
                                "role) VALUES (%s, %s, %s, 'MEMBER') ON CONFLICT (organization_id, "
                                'user_id) DO UPDATE SET accepted_at = now()',
                         new_id(), world['A'], world['zed'])[0] == DENIED
    assert world.profile('ada', 'zed') == []


def test_an_owner_cannot_turn_a_membership_into_someone_elses(world):
    """Rewriting user_id (or moving a membership to another organization) would make an accepted
    membership for a user who never accepted it."""
    # ada is OWNER of C too: the policies alone would let her move memberships between them.
    world.database.execute_sql("INSERT INTO organization_members (id, organization_id, user_id, "
                               "role, accepted_at) VALUES (%s, %s, %s, 'OWNER', now())",
                               (new_id(), world['C'], world['ada']))
    before = world.memberships()
    for assignment in ('user_id = %s', 'organization_id = %s'):
        target = world['zed'] if assignment.startswith('user') else world['C']
        code, message = world.refused('ada', 'UPDATE organization_members SET %s WHERE id = %%s'
                                      % assignment, target, world['m_cy'])
        # Refused by the column grants (identity columns are not granted), and by the consent
        # trigger behind them should a grant ever widen.
        assert code == DENIED and ('cannot change' in message or 'permission denied' in message)
    assert world.memberships() == before
    assert world.profile('ada', 'zed') == []
    assert world.run('cy', 'SELECT count(*) FROM organizations WHERE id = %s', world['C']) == [(0,)]


# -- the invited user ------------------------------------------------------------------------

def test_a_pending_invitee_sees_their_invitation_and_nothing_of_the_organization(world):
    invitation = world.invite('ada', 'zed', role='ADMIN')
    assert world.run('zed', 'SELECT id, organization_id, role::text, accepted_at '
                            'FROM organization_members') == [(invitation, world['A'], 'ADMIN', None)]
    assert world.run('zed', 'SELECT count(*) FROM organizations') == [(0,)]
    assert world.run('zed', 'SELECT id FROM users') == [(world['zed'],)]
    assert world.run('zed', 'SELECT count(*) FROM workflow_templates WHERE NOT is_public') == [(0,)]
    # An invited ADMIN is no ADMIN yet: they can invite nobody.
    assert world.refused('zed', "INSERT INTO organization_members (id, organization_id, user_id, "
                                "role) VALUES (%s, %s, %s, 'MEMBER')",
                         new_id(), world['A'], world['ida'])[0] == DENIED
    # The organization sees the invitation (the id it used) and nothing of the profile.
    assert world.run('cy', 'SELECT user_id, accepted_at FROM organization_members WHERE id = %s',
                     invitation) == [(world['zed'], None)]
    assert world.profile('ada', 'zed') == []


def test_accepting_makes_a_member_both_ways(world):
    invitation = world.invite('bob', 'zed')
    # Whatever time the invitee sends, the database records when they accepted.
    assert world.run('zed', "UPDATE organization_members SET accepted_at = '2001-01-01' "
                            'WHERE id = %s', invitation) == 1
    (stamped,) = world.database.execute_sql(
        'SELECT accepted_at >= created_at FROM organization_members WHERE id = %s',
        (invitation,)).fetchone()
    assert stamped
    assert world.profile('ada', 'zed') == [('zed@%s.example' % world['zed'], 'Zed')]
    assert world.profile('zed', 'ada') == [('ada@%s.example' % world['ada'], 'Ada')]
    assert world.run('zed', 'SELECT id FROM organizations') == [(world['A'],)]
    # Accepted stays accepted: nobody rewrites or clears accepted_at (leaving is a DELETE).
    for who in ('zed', 'ada'):
        for value in ('NULL', "'2030-01-01'"):
            result = None
            try:
                result = world.run(who, 'UPDATE organization_members SET accepted_at = %s '
                                        'WHERE id = %%s' % value, invitation)
            except psycopg2.Error as exc:
                result = exc.pgcode
            # zed no longer reaches the row for UPDATE (0 rows); ada is refused by the trigger.
            assert result == (0 if who == 'zed' else DENIED), (who, value)


def test_declining_deletes_the_invitation(world):
    invitation = world.invite('ada', 'zed')
    assert world.run('zed', 'DELETE FROM organization_members WHERE id = %s', invitation) == 1
    assert world.run('ada', 'SELECT count(*) FROM organization_members WHERE id = %s',
                     invitation) == [(0,)]


def test_an_invitee_accepts_only_the_role_and_organization_they_were_invited_to(world):
    invitation = world.invite('ada', 'zed')
    before = world.memberships()
    code, message = world.refused('zed', "UPDATE organization_members SET accepted_at = now(), "
                                         "role = 'OWNER' WHERE id = %s", invitation)
    assert code == DENIED and 'cannot change its role (invited as MEMBER)' in message
    # Without accepting, the invitee may change nothing at all.
    assert world.refused('zed', "UPDATE organization_members SET role = 'OWNER' WHERE id = %s",
                         invitation)[0] == DENIED
    # Accepting into another organization (C never invited zed).
    code, message = world.refused('zed', 'UPDATE organization_members SET accepted_at = now(), '
                                         'organization_id = %s WHERE id = %s', world['C'],
                                  invitation)
    assert code == DENIED and ('cannot change' in message or 'permission denied' in message)
    assert world.memberships() == before
    assert world.run('zed', 'UPDATE organization_members SET accepted_at = now() WHERE id = %s',
                     invitation) == 1
    # Once accepted, a MEMBER's own row is out of their reach for UPDATE: no self-promotion.
    assert world.run('zed', "UPDATE organization_members SET role = 'OWNER' WHERE id = %s",
                     invitation) == 0
    assert world.run('service', 'SELECT role::text FROM organization_members WHERE id = %s',
                     invitation) == [('MEMBER',)]


def test_a_member_cannot_raise_their_own_role(world):
    """The invitee's own UPDATE branch must not admit a member: an ADMIN may manage others'
    memberships but never make themselves OWNER, nor a MEMBER anything."""
    before = world.memberships()
    assert world.refused('bob', "UPDATE organization_members SET role = 'OWNER' WHERE id = %s",
                         world['m_bob'])[0] == DENIED
    assert world.run('cy', "UPDATE organization_members SET role = 'ADMIN' WHERE id = %s",
                     world['m_cy']) == 0
    # With the organization claim naming another organization, nothing changes either.
    assert world.api.run("UPDATE organization_members SET role = 'OWNER' WHERE id = %s",
                         (world['m_bob'],), claims={'sub': world['bob'], 'role': 'authenticated',
                                                    'organization_id': world['C']}) == 0
    assert world.memberships() == before


def test_an_admin_may_still_change_the_role_of_an_invitation(world):
    invitation = world.invite('bob', 'zed')
    assert world.run('bob', "UPDATE organization_members SET role = 'ADMIN' WHERE id = %s",
                     invitation) == 1
    assert world.run('zed', 'UPDATE organization_members SET accepted_at = now() WHERE id = %s',
                     invitation) == 1
    assert world.run('zed', 'SELECT role::text FROM organization_members WHERE id = %s',
                     invitation) == [('ADMIN',)]


def test_operations_count_only_accepted_members(world):
    world.invite('ada', 'zed')
    nodes = [graph.node('t', 'trigger', {'label': 'Start'}, 0, 0),
             graph.node('o', 'end', {'label': 'Done'}, 280, 0)]
    template = WorkflowTemplate.create(name='Flow', description='d', category='SALES',
                                       nodes=nodes, edges=[graph.edge('t', 'o')], is_public=True)
    with pytest.raises(RuleViolation, match='invited to organization .* has not accepted yet'):
        workflows.instantiate_template(template, world['A'], world['zed'])
    assert workflows.instantiate_template(template, world['A'], world['cy']).organization_id \
        == world['A']


# -- always an OWNER ---------------------------------------------------------------------------

def test_the_last_owner_cannot_leave_be_demoted_or_removed(world):
    world.invite('ada', 'zed', role='OWNER')  # an invited OWNER is no OWNER yet
    before = world.memberships()
    message = 'organization %s would be left without an OWNER' % world['A']
    for who, sql, params in (
            ('ada', 'DELETE FROM organization_members WHERE id = %s', [world['m_ada']]),
            ('ada', "UPDATE organization_members SET role = 'ADMIN' WHERE id = %s",
             [world['m_ada']]),
            ('service', 'DELETE FROM organization_members WHERE id = %s', [world['m_ada']]),
            ('service', 'UPDATE organization_members SET organization_id = %s WHERE id = %s',
             [world['C'], world['m_ada']]),
            ('service', 'UPDATE organization_members SET accepted_at = NULL WHERE id = %s',
             [world['m_ada']]),
            ('service', 'DELETE FROM users WHERE id = %s', [world['ada']])):
        assert world.refused(who, sql, *params) == (OWNERLESS, message), sql
    assert world.memberships() == before
    # With a second accepted OWNER, the first may go.
    assert world.run('ada', "UPDATE organization_members SET role = 'OWNER' WHERE id = %s",
                     world['m_bob']) == 1
    assert world.run('ada', 'DELETE FROM organization_members WHERE id = %s', world['m_ada']) == 1
    assert world.refused('bob', 'DELETE FROM organization_members WHERE id = %s',
                         world['m_bob']) == (OWNERLESS, message)


def test_deleting_the_organization_still_works(world):
    world.invite('ada', 'zed')
    assert world.run('ada', 'DELETE FROM organizations WHERE id = %s', world['A']) == 1
    assert world.run('service', 'SELECT count(*) FROM organization_members '
                                'WHERE organization_id = %s', world['A']) == [(0,)]
    assert world.run('service', 'DELETE FROM organizations WHERE id = %s', world['B']) == 1


def test_ownership_can_change_hands_in_one_deferred_transaction(world, db_url):
    with contextlib.closing(psycopg2.connect(db_url)) as conn:
        with conn, conn.cursor() as cur:
            cur.execute('SET CONSTRAINTS organization_members_keep_an_owner DEFERRED')
            cur.execute("UPDATE organization_members SET role = 'MEMBER' WHERE id = %s",
                        (world['m_ada'],))
            cur.execute("UPDATE organization_members SET role = 'OWNER' WHERE id = %s",
                        (world['m_bob'],))
    with contextlib.closing(psycopg2.connect(db_url)) as conn:
        with pytest.raises(psycopg2.Error) as info:
            with conn, conn.cursor() as cur:
                cur.execute('SET CONSTRAINTS organization_members_keep_an_owner DEFERRED')
                cur.execute("UPDATE organization_members SET role = 'MEMBER' WHERE id = %s",
                            (world['m_bob'],))
        assert info.value.pgcode == OWNERLESS


def test_two_owners_removing_each_other_at_once_leave_one(world, db_url):
    """Each sees the other still OWNER in its own snapshot; the organization's row lock makes
    the second wait for the first and then see its change."""
    world.run('ada', "UPDATE organization_members SET role = 'OWNER' WHERE id = %s", world['m_bob'])
    first = psycopg2.connect(db_url)
    second = psycopg2.connect(db_url)
    outcome = {}

    def demote_ada():
        try:
            with second, second.cursor() as cur:
                cur.execute("UPDATE organization_members SET role = 'ADMIN' WHERE id = %s",
                            (world['m_ada'],))
            outcome['second'] = 'committed'
        except psycopg2.Error as exc:
            outcome['second'] = exc.pgcode

    try:
        cur = first.cursor()
        cur.execute("UPDATE organization_members SET role = 'ADMIN' WHERE id = %s",
                    (world['m_bob'],))
        thread = threading.Thread(target=demote_ada)
        thread.start()
        pid = second.get_backend_pid()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and world.database.execute_sql(
                "SELECT wait_event_type IS DISTINCT FROM 'Lock' FROM pg_stat_activity "
                'WHERE pid = %s', (pid,)).fetchone()[0]:
            time.sleep(0.02)
        first.commit()
        thread.join(30)
    finally:
        first.close()
        second.close()
    assert outcome == {'second': OWNERLESS}
    assert world.database.execute_sql(
        "SELECT count(*) FROM organization_members WHERE organization_id = %s AND role = 'OWNER'",
        (world['A'],)).fetchone() == (1,)
