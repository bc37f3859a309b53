"""Team operations that keep a team's shape valid.

    >>> import hub
    >>> from hub import teams
    >>> db = hub.connect()
    >>> org = hub.Organization.select().order_by(hub.Organization.id).first()   # one of yours
    >>> owner = org.memberships.where(hub.OrganizationMember.role == 'OWNER').get().user
    >>> team = hub.AgentTeam.create(name='Review line', structure='PIPELINE', coordination={},
    ...                             organization=org, creator=owner)
    >>> agent, other = hub.AIAgent.select().where(hub.AIAgent.organization == org).limit(2)
    >>> teams.add_member(team, agent, hub.TeamRole.WORKER).priority   # PIPELINE: appended
    0
    >>> teams.add_member(team, other, 'SPECIALIST', priority=0).priority  # first; others shift
    0
    >>> teams.remove_member(team, other)                     # priorities close the gap
    >>> [(m.agent_id == agent.id, m.priority) for m in team.members]
    [(True, 0)]

Rules: the agent belongs to the team's organization and joins once; a HIERARCHICAL team has
exactly one LEADER (a second is refused; the leader leaves last); a PIPELINE team's priorities
are 0..k-1 with no gaps or repeats.
"""
from hub.connection import database
from hub.models import TeamMember, TeamRole, TeamStructure
from hub.rules import RuleViolation


def _members(team):
    return TeamMember.select().where(TeamMember.team == team.id)


def add_member(team, agent, role, priority=None):
    """Add `agent` to `team` in `role`; returns the TeamMember row."""
    role = TeamRole(role)
    if agent.organization_id != team.organization_id:
        raise RuleViolation('agent %r belongs to another organization than team %r'
                            % (agent.id, team.id))
    with database.atomic():
        # Serialise changes to this team's membership.
        database.execute_sql('SELECT 1 FROM agent_teams WHERE id = %s FOR UPDATE', (team.id,))
        members = list(_members(team))
        if any(m.agent_id == agent.id for m in members):
            raise RuleViolation('agent %r is already a member of team %r' % (agent.id, team.id))
        structure = TeamStructure(team.structure)
        if structure is TeamStructure.HIERARCHICAL and role is TeamRole.LEADER and any(
                m.role is TeamRole.LEADER for m in members):
            raise RuleViolation('team %r is HIERARCHICAL and already has its one LEADER' % team.id)
        if structure is TeamStructure.HIERARCHICAL and not members and role is not TeamRole.LEADER:
            raise RuleViolation('a HIERARCHICAL team starts with its LEADER; add the leader first')
        if structure is TeamStructure.PIPELINE:
            size = len(members)
            priority = size if priority is None else priority
            if not 0 <= priority <= size:
                raise RuleViolation('priority %d would leave a gap: team %r has stages 0..%d'
                                    % (priority, team.id, size - 1))
            (TeamMember.update(priority=TeamMember.priority + 1)
             .where((TeamMember.team == team.id) & (TeamMember.priority >= priority)).execute())
        elif priority is None:
            priority = 0
        return TeamMember.create(organization=team.organization_id, team=team.id, agent=agent.id,
                                 role=role, priority=priority)


def remove_member(team, agent):
    """Remove `agent` from `team`, closing the gap in a PIPELINE's priorities."""
    with database.atomic():
        database.execute_sql('SELECT 1 FROM agent_teams WHERE id = %s FOR UPDATE', (team.id,))
        members = list(_members(team))
        member = next((m for m in members if m.agent_id == agent.id), None)
        if member is None:
            raise RuleViolation('agent %r is not a member of team %r' % (agent.id, team.id))
        structure = TeamStructure(team.structure)
        if (structure is TeamStructure.HIERARCHICAL and member.role is TeamRole.LEADER
                and len(members) > 1):
            raise RuleViolation('agent %r leads HIERARCHICAL team %r; the leader leaves last, '
                                'after the other members' % (agent.id, team.id))
        member.delete_instance()
        if structure is TeamStructure.PIPELINE:
            (TeamMember.update(priority=TeamMember.priority - 1)
             .where((TeamMember.team == team.id) & (TeamMember.priority > member.priority))
             .execute())
