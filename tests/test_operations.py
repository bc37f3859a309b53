"""hub.workflows, hub.agents, hub.teams: every rule, the accepted and the rejected cases."""
import datetime
import decimal

import pytest

from hub import agents, graph, rules, teams, workflows
from hub.models import (AgentExecution, AgentTeam, AIAgent, ExecutionStatus, MemberRole,
                        Organization, OrganizationMember, TeamMember, TeamRole, User, Workflow,
                        WorkflowTemplate)
from hub.rules import RuleViolation

# A fixed clock for rows whose times the tests choose; DONE is within the 24.8 days a
# `duration` column holds. Tests of the default completed_at (now) start from now instead.
T0 = datetime.datetime(2026, 11, 1, 9, tzinfo=datetime.timezone.utc)
DONE = T0 + datetime.timedelta(minutes=3)
NODES = [graph.node('t', 'trigger', {'label': 'Start'}, 0, 0),
         graph.node('a', 'agent', {'label': 'Think'}, 280, 0),
         graph.node('o', 'end', {'label': 'Done'}, 560, 0)]
EDGES = [graph.edge('t', 'a'), graph.edge('a', 'o')]


def org(slug):
    organization = Organization.create(name=slug.title(), slug=slug)
    user = User.create(email='owner@%s.example' % slug)
    OrganizationMember.create(organization=organization, user=user, role=MemberRole.OWNER,
                              accepted_at=organization.created_at)
    return organization, user


def template(**values):
    fields = dict(name='Lead triage', description='d', category='SALES', nodes=NODES,
                  edges=EDGES, variables={'channel': '#sales'}, tags=['crm'], is_public=True)
    fields.update(values)
    return WorkflowTemplate.create(**fields)


def agent_of(organization, user, name='Nova'):
    return AIAgent.create(name=name, personality={}, memory={}, organization=organization,
                          creator=user, model_config={'provider': 'anthropic',
                                                      'model': 'claude-sonnet-4'})


@pytest.fixture
def acme(txn):
    return org('acme')


# -- workflows --------------------------------------------------------------------------------

def test_instantiate_copies_the_graph_and_bumps_usage(acme):
    organization, user = acme
    source = template()
    flow = workflows.instantiate_template(source, organization, user)
    got = Workflow.get_by_id(flow.id)
    assert (got.nodes, got.edges, got.variables, got.tags) == (NODES, EDGES, {'channel': '#sales'}, ['crm'])
    assert got.template_id == source.id and got.organization_id == organization.id
    workflows.instantiate_template(source, organization, user, name='Second')
    assert WorkflowTemplate.get_by_id(source.id).usage_count == 2


def test_instantiate_refuses_another_tenants_private_template(acme):
    organization, user = acme
    other, _ = org('globex')
    private = template(is_public=False, organization=other)
    with pytest.raises(RuleViolation, match='private to another organization'):
        workflows.instantiate_template(private, organization, user)
    assert WorkflowTemplate.get_by_id(private.id).usage_count == 0
    own = template(is_public=False, organization=organization)
    assert workflows.instantiate_template(own, organization, user).template_id == own.id


def test_instantiate_needs_a_member_and_a_valid_graph(acme):
    organization, _ = acme
    _, stranger = org('globex')
    with pytest.raises(RuleViolation, match='not a member'):
        workflows.instantiate_template(template(), organization, stranger)
    broken = template(name='Broken', edges=[graph.edge('a', 't')])
    with pytest.raises(graph.GraphError):
        workflows.instantiate_template(broken, organization, acme[1])
    assert Workflow.select().count() == 0


def test_execution_lifecycle_updates_the_workflow(acme):
    flow = workflows.instantiate_template(template(), *acme)
    first = workflows.start_execution(flow, input={'x': 1}, started_at=T0)
    later = workflows.start_execution(flow, started_at=T0 + datetime.timedelta(hours=1))
    got = Workflow.get_by_id(flow.id)
    assert got.execution_count == 2 and got.last_executed == later.started_at
    workflows.mark_running(first)
    done = T0 + datetime.timedelta(seconds=2, milliseconds=345)
    workflows.finish_execution(first, ExecutionStatus.COMPLETED, output={'ok': True},
                               completed_at=done, nodes_executed=3, tokens_used=10,
                               cost=decimal.Decimal('0.05'))
    row = type(first).get_by_id(first.id)
    assert row.status is ExecutionStatus.COMPLETED and row.duration == 2345
    assert row.nodes_executed == 3 and row.completed_at == done


@pytest.mark.parametrize('path', [
    [ExecutionStatus.COMPLETED],                       # PENDING cannot finish without running
    [ExecutionStatus.RUNNING, ExecutionStatus.PENDING],
    [ExecutionStatus.RUNNING, ExecutionStatus.RUNNING],
    [ExecutionStatus.RUNNING, ExecutionStatus.CANCELLED, ExecutionStatus.COMPLETED],
])
def test_invalid_transitions_are_refused(acme, path):
    flow = workflows.instantiate_template(template(), *acme)
    execution = workflows.start_execution(flow, started_at=T0)
    *allowed, bad = path
    for status in allowed:
        if status is ExecutionStatus.RUNNING:
            workflows.mark_running(execution)
        else:
            workflows.finish_execution(execution, status, completed_at=DONE)
    with pytest.raises(RuleViolation, match='cannot become %s' % bad.value):
        if bad in (ExecutionStatus.RUNNING,):
            workflows.mark_running(execution)
        elif bad is ExecutionStatus.PENDING:
            workflows._transition(execution, bad)
        else:
            workflows.finish_execution(execution, bad, completed_at=DONE)


def test_finish_rules(acme):
    flow = workflows.instantiate_template(template(), *acme)
    execution = workflows.mark_running(workflows.start_execution(flow, started_at=T0))
    with pytest.raises(RuleViolation, match='needs an error'):
        workflows.finish_execution(execution, ExecutionStatus.FAILED, completed_at=DONE)
    with pytest.raises(RuleViolation, match='before started_at'):
        workflows.finish_execution(execution, ExecutionStatus.COMPLETED,
                                   completed_at=T0 - datetime.timedelta(seconds=1))
    with pytest.raises(RuleViolation, match='nodes_executed 4 is outside 0..3'):
        workflows.finish_execution(execution, ExecutionStatus.COMPLETED, nodes_executed=4,
                                   completed_at=DONE)
    with pytest.raises(RuleViolation, match='not RUNNING'):
        workflows.finish_execution(execution, ExecutionStatus.RUNNING, completed_at=DONE)
    workflows.finish_execution(execution, ExecutionStatus.FAILED, error='HTTP 500 from CRM',
                               completed_at=DONE)


def test_finish_defaults_completed_at_to_now(acme):
    flow = workflows.instantiate_template(template(), *acme)
    started = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    execution = workflows.mark_running(workflows.start_execution(flow, started_at=started))
    workflows.finish_execution(execution, ExecutionStatus.COMPLETED)
    row = type(execution).get_by_id(execution.id)
    assert row.completed_at >= started + datetime.timedelta(seconds=5)
    assert 5000 <= row.duration < 5000 + 60000


def test_a_duration_the_integer_column_cannot_hold_is_refused(acme):
    """`duration` is integer ms (Prisma Int): 24.8 days at most; longer is a RuleViolation."""
    flow = workflows.instantiate_template(template(), *acme)
    execution = workflows.mark_running(workflows.start_execution(flow, started_at=T0))
    longest = T0 + datetime.timedelta(milliseconds=rules.MAX_DURATION_MS)
    with pytest.raises(RuleViolation, match=r'holds at most 2147483647 ms \(24.8 days\)'):
        workflows.finish_execution(execution, ExecutionStatus.COMPLETED,
                                   completed_at=longest + datetime.timedelta(milliseconds=1))
    row = type(execution).get_by_id(execution.id)
    assert row.status is ExecutionStatus.RUNNING and row.duration is None
    workflows.finish_execution(execution, ExecutionStatus.COMPLETED, completed_at=longest)
    assert type(execution).get_by_id(execution.id).duration == rules.MAX_DURATION_MS
    agent = agent_of(*acme)
    with pytest.raises(RuleViolation, match='agent .* holds at most 2147483647 ms'):
        agents.record_execution(agent, 'task', {}, 'COMPLETED', started_at=T0,
                                duration=rules.MAX_DURATION_MS + 1)
    assert AgentExecution.select().count() == 0


# -- agents -----------------------------------------------------------------------------------

def test_record_execution_keeps_counters_true(acme):
    agent = agent_of(*acme)
    for status, duration in (('COMPLETED', 1000), ('COMPLETED', 2000), ('FAILED', 500),
                             ('CANCELLED', 10), ('RUNNING', None)):
        agents.record_execution(agent, 'task', {}, status, started_at=T0, duration=duration)
    assert agent.execution_count == 5
    assert agent.success_rate == rules.success_rate(completed=2, failed=1)
    assert agent.avg_response_time == rules.mean_duration(total_ms=3000, completed=2)
    stored = AIAgent.get_by_id(agent.id)
    assert (stored.execution_count, stored.success_rate, stored.avg_response_time) == (5, 2 / 3, 1500.0)
    row = AgentExecution.select().where(AgentExecution.duration == 2000).get()
    assert (row.model, row.provider) == ('claude-sonnet-4', 'anthropic')
    assert row.completed_at == T0 + datetime.timedelta(seconds=2)


def test_record_execution_rules(acme):
    agent = agent_of(*acme)
    with pytest.raises(RuleViolation, match='needs a duration'):
        agents.record_execution(agent, 'task', {}, 'COMPLETED')
    with pytest.raises(RuleViolation, match='has no duration yet'):
        agents.record_execution(agent, 'task', {}, 'RUNNING', duration=5)
    other_org, other_user = org('globex')
    foreign = workflows.start_execution(
        workflows.instantiate_template(template(), other_org, other_user))
    with pytest.raises(RuleViolation, match='not in organization'):
        agents.record_execution(agent, 'task', {}, 'PENDING', workflow_execution=foreign)
    assert AgentExecution.select().count() == 0 and AIAgent.get_by_id(agent.id).execution_count == 0


# -- teams ------------------------------------------------------------------------------------

def team_of(organization, user, structure):
    return AgentTeam.create(name='Crew', structure=structure, coordination={},
                            organization=organization, creator=user)


def test_hierarchical_team_has_exactly_one_leader(acme):
    team = team_of(*acme, 'HIERARCHICAL')
    lead, worker, extra = (agent_of(*acme, n) for n in ('Lead', 'Worker', 'Extra'))
    with pytest.raises(RuleViolation, match='starts with its LEADER'):
        teams.add_member(team, worker, TeamRole.WORKER)
    teams.add_member(team, lead, TeamRole.LEADER)
    teams.add_member(team, worker, TeamRole.WORKER)
    with pytest.raises(RuleViolation, match='already has its one LEADER'):
        teams.add_member(team, extra, TeamRole.LEADER)
    with pytest.raises(RuleViolation, match='leaves last'):
        teams.remove_member(team, lead)
    assert [m.role for m in TeamMember.select().where(TeamMember.role == TeamRole.LEADER)] == [TeamRole.LEADER]


def test_pipeline_priorities_stay_dense(acme):
    team = team_of(*acme, 'PIPELINE')
    a, b, c, d = (agent_of(*acme, n) for n in 'ABCD')
    teams.add_member(team, a, 'WORKER')
    teams.add_member(team, b, 'WORKER')
    teams.add_member(team, c, 'SPECIALIST', priority=0)   # goes first, the others shift
    order = lambda: [m.agent_id for m in TeamMember.select().where(TeamMember.team == team.id)
                     .order_by(TeamMember.priority)]
    prios = lambda: sorted(m.priority for m in TeamMember.select().where(TeamMember.team == team.id))
    assert order() == [c.id, a.id, b.id] and prios() == [0, 1, 2]
    with pytest.raises(RuleViolation, match='would leave a gap'):
        teams.add_member(team, d, 'WORKER', priority=5)
    teams.remove_member(team, a)
    assert order() == [c.id, b.id] and prios() == [0, 1]


def test_team_membership_rules(acme):
    team = team_of(*acme, 'COLLABORATIVE')
    agent = agent_of(*acme)
    teams.add_member(team, agent, 'WORKER')
    with pytest.raises(RuleViolation, match='already a member'):
        teams.add_member(team, agent, 'WORKER')
    foreign = agent_of(*org('globex'), name='Spy')
    with pytest.raises(RuleViolation, match='another organization'):
        teams.add_member(team, foreign, 'WORKER')
    with pytest.raises(RuleViolation, match='not a member'):
        teams.remove_member(team, foreign)
