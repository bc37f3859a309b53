"""Rebuild fixtures/scenarios/*.json: curated organizations made with the operations API.

    $ python -m tools.make_scenarios               # on a throwaway database of the server in use
    $ python -m tools.make_scenarios --out /tmp/s  # somewhere else, to compare before committing

Run from the repository root (the default folder is the checkout's, never site-packages).

Each scenario is written as a story with hub.workflows / hub.agents / hub.teams, so it obeys the
same rules as the seeder and any script, then exported with hub.snapshot. Rerunning it makes new
ids and timestamps: commit the result only when a scenario really changes.
"""
import argparse
import datetime
from pathlib import Path

from hub import agents, connection, lifecycle, marketplace, snapshot, teams, workflows
from hub.ids import stable_id
from hub.models import (AgentTeam, AIAgent, ExecutionStatus as S, MemberRole, Organization,
                        OrganizationMember, TeamRole, User, WorkflowTemplate)
from tools.throwaway import throwaway_database

# The repository's copy, which the package installs as hub.fixtures.scenarios: this tool runs
# from a checkout, never from an installed package.
OUT = Path(__file__).resolve().parents[1] / 'fixtures' / 'scenarios'
AS_OF = datetime.datetime(2026, 11, 2, 9, 0, tzinfo=datetime.timezone.utc)


def at(hours_before):
    return AS_OF - datetime.timedelta(hours=hours_before)


def organization(name, slug, people):
    org = Organization.create(name=name, slug=slug, created_at=at(24 * 30), updated_at=at(24 * 30))
    users = []
    for (full_name, email), role in zip(people, (MemberRole.OWNER, MemberRole.ADMIN,
                                                 MemberRole.MEMBER, MemberRole.MEMBER)):
        user = User.create(name=full_name, email=email, created_at=at(24 * 30), updated_at=at(24 * 30))
        OrganizationMember.create(organization=org, user=user, role=role, created_at=at(24 * 30),
                                  accepted_at=at(24 * 30))
        users.append(user)
    return org, users


def agent(org, user, name, provider, model, tools, tone):
    return AIAgent.create(
        name=name, organization=org, creator=user, capabilities=tools,
        personality={'traits': ['precise', 'calm'], 'tone': tone, 'style': 'concise'},
        model_config={'provider': provider, 'model': model, 'temperature': 0.3, 'max_tokens': 2048},
        memory={'knowledge': [], 'conversations': 0}, created_at=at(24 * 29), updated_at=at(24 * 29))


def template(stem):
    return WorkflowTemplate.get_by_id(stable_id('template', stem))


def run(flow, hours_before, status, seconds, error=None, output=None):
    execution = workflows.start_execution(flow, input={'source': 'scenario'},
                                          started_at=at(hours_before))
    if status is S.PENDING:
        return execution
    workflows.mark_running(execution)
    if status is S.RUNNING:
        return execution
    workflows.finish_execution(execution, status, error=error, output=output,
                               completed_at=at(hours_before) + datetime.timedelta(seconds=seconds),
                               nodes_executed=len(flow.nodes) if status is S.COMPLETED else 2)
    return execution


def support_escalation():
    """A support team whose ticket triage keeps failing on the helpdesk API's rate limit."""
    org, (owner, admin, member) = organization('Northwind Support', 'northwind-support', [
        ('Maya Lindqvist', 'maya@northwind.example'), ('Omar Haddad', 'omar@northwind.example'),
        ('Jin Park', 'jin@northwind.example')])
    lead = agent(org, owner, 'Atlas', 'anthropic', 'claude-sonnet-4', ['ticket_lookup', 'kb_search'], 'warm')
    triage = agent(org, admin, 'Sift', 'openai', 'gpt-4o-mini', ['classify', 'kb_search'], 'neutral')
    writer = agent(org, admin, 'Quill', 'openai', 'gpt-4o', ['draft_reply'], 'friendly')
    team = AgentTeam.create(name='Escalation desk', structure='HIERARCHICAL', organization=org,
                            creator=owner, coordination={'delegation': 'by_skill'},
                            created_at=at(24 * 28), updated_at=at(24 * 28))
    teams.add_member(team, lead, TeamRole.LEADER)
    teams.add_member(team, triage, TeamRole.WORKER)
    teams.add_member(team, writer, TeamRole.SPECIALIST)
    flow = workflows.instantiate_template(template('support-ticket-triage'), org, admin)
    for hours, status, seconds, error in ((70, S.COMPLETED, 14, None), (50, S.COMPLETED, 11, None),
                                          (30, S.FAILED, 3, 'helpdesk API answered 429 Too Many Requests'),
                                          (20, S.FAILED, 2, 'helpdesk API answered 429 Too Many Requests'),
                                          (5, S.COMPLETED, 16, None), (0.2, S.RUNNING, 0, None)):
        execution = run(flow, hours, status, seconds, error=error,
                        output={'priority': 'high'} if status is S.COMPLETED else None)
        agents.record_execution(triage, 'Classify the ticket', {'ticket': 4211},
                                S.RUNNING if status is S.RUNNING else
                                (S.FAILED if status is S.FAILED else S.COMPLETED),
                                started_at=at(hours), duration=None if status is S.RUNNING else 1800,
                                tokens_used=900, workflow_execution=execution)
    return org


def content_pipeline():
    """A media team whose writing pipeline runs daily; one run was cancelled by an editor."""
    org, (owner, admin, member, intern) = organization('Brightline Media', 'brightline-media', [
        ('Ana Sousa', 'ana@brightline.example'), ('Tom Becker', 'tom@brightline.example'),
        ('Lena Ito', 'lena@brightline.example'), ('Sam Ortiz', 'sam@brightline.example')])
    stages = [agent(org, owner, name, provider, model, tools, tone) for name, provider, model, tools, tone in (
        ('Scout', 'openai', 'gpt-4o', ['web_search'], 'curious'),
        ('Drafter', 'anthropic', 'claude-sonnet-4', ['draft_article'], 'vivid'),
        ('Editor', 'anthropic', 'claude-sonnet-4', ['style_check', 'fact_check'], 'exacting'))]
    team = AgentTeam.create(name='Article pipeline', structure='PIPELINE', organization=org,
                            creator=admin, coordination={'handoff': 'sequential'},
                            created_at=at(24 * 28), updated_at=at(24 * 28))
    for stage in stages:
        teams.add_member(team, stage, TeamRole.WORKER)
    flow = workflows.instantiate_template(template('seo-blog-pipeline'), org, member)
    for day in range(6, 0, -1):
        status = S.CANCELLED if day == 3 else S.COMPLETED
        run(flow, 24 * day, status, 95, output={'words': 1200} if status is S.COMPLETED else None)
    run(flow, 0.05, S.PENDING, 0)
    return org


SCENARIOS = {'support-escalation': support_escalation, 'content-pipeline': content_pipeline}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, default=OUT,
                        help='folder to write the scenarios to (default: %s)' % OUT)
    out = parser.parse_args(argv).out
    with throwaway_database(connection.resolve_url(), prefix='hub_scenarios') as url:
        database = connection.bind(connection.open_database(url))
        try:
            lifecycle.migrate_database(database)
            marketplace.load(database, timestamp=AS_OF - datetime.timedelta(weeks=26))
            out.mkdir(parents=True, exist_ok=True)
            for scenario, build in SCENARIOS.items():
                with database.atomic():
                    org = build()
                (out / ('%s.json' % scenario)).write_text(
                    snapshot.dumps(snapshot.export_organization(database, org.id)))
                print('wrote', out / ('%s.json' % scenario))
        finally:
            database.close()


if __name__ == '__main__':
    main()
