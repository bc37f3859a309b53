"""Workflow operations that keep the invariants: instantiate a template, run an execution.

    >>> import hub
    >>> from hub import workflows
    >>> db = hub.connect()
    >>> template = hub.WorkflowTemplate.get(hub.WorkflowTemplate.name == 'Inbound Lead Qualification')
    >>> organization = hub.Organization.select().order_by(hub.Organization.id).first()
    >>> creator = organization.memberships.get().user           # a member of it
    >>> flow = workflows.instantiate_template(template, organization, creator)   # usage_count + 1
    >>> run = workflows.start_execution(flow, input={'email': 'ada@example.com'})  # PENDING
    >>> workflows.mark_running(run).status
    <ExecutionStatus.RUNNING: 'RUNNING'>
    >>> workflows.finish_execution(run, hub.ExecutionStatus.COMPLETED, output={'score': 82}).status
    <ExecutionStatus.COMPLETED: 'COMPLETED'>

Each function runs in one transaction (a savepoint inside yours) and raises
`hub.rules.RuleViolation` with a one-line reason instead of writing a row that breaks a rule.
"""
import copy
import datetime

from peewee import fn

from hub import graph, rules
from hub.connection import database
from hub.models import (ExecutionStatus, OrganizationMember, Workflow, WorkflowExecution,
                        WorkflowTemplate)
from hub.rules import RuleViolation


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _require_member(organization_id, user_id):
    # An invitation (accepted_at NULL) makes nobody a member, here as in the policies.
    accepted = (OrganizationMember.select(OrganizationMember.accepted_at.is_null(False))
                .where((OrganizationMember.organization == organization_id)
                       & (OrganizationMember.user == user_id)).scalar())
    if accepted is None:
        raise RuleViolation('user %r is not a member of organization %r'
                            % (user_id, organization_id))
    if not accepted:
        raise RuleViolation('user %r is invited to organization %r but has not accepted yet'
                            % (user_id, organization_id))


def instantiate_template(template, organization, creator, name=None):
    """A new workflow of `organization` copying the template's graph; bumps its usage_count.

    The template must be visible to the organization: public, or the organization's own.
    """
    org_id = getattr(organization, 'id', organization)
    user_id = getattr(creator, 'id', creator)
    if not (template.is_public or template.organization_id == org_id):
        raise RuleViolation('template %r is private to another organization; '
                            'organization %r cannot use it' % (template.id, org_id))
    graph.check(template.nodes, template.edges, where='template %r' % template.id, layout=False)
    with database.atomic():
        _require_member(org_id, user_id)
        workflow = Workflow.create(
            name=name or template.name, description=template.description,
            nodes=copy.deepcopy(template.nodes), edges=copy.deepcopy(template.edges),
            variables=copy.deepcopy(template.variables), tags=list(template.tags),
            template=template.id, organization=org_id, creator=user_id)
        (WorkflowTemplate.update(usage_count=WorkflowTemplate.usage_count + 1)
         .where(WorkflowTemplate.id == template.id).execute())
    return workflow


def start_execution(workflow, input=None, started_at=None):
    """A PENDING execution of `workflow`; its execution_count and last_executed follow."""
    started_at = started_at or _now()
    with database.atomic():
        execution = WorkflowExecution.create(
            organization=workflow.organization_id, workflow=workflow.id,
            status=ExecutionStatus.PENDING, started_at=started_at, input=input)
        (Workflow.update(execution_count=Workflow.execution_count + 1,
                         last_executed=fn.GREATEST(Workflow.last_executed, started_at))
         .where(Workflow.id == workflow.id).execute())
    return execution


def _transition(execution, new, **values):
    with database.atomic():
        current = (WorkflowExecution.select(WorkflowExecution.status)
                   .where(WorkflowExecution.id == execution.id).for_update().get().status)
        rules.check_transition(execution.id, current, new)
        values['status'] = new
        WorkflowExecution.update(**values).where(WorkflowExecution.id == execution.id).execute()
    for key, value in values.items():
        setattr(execution, key, value)
    return execution


def mark_running(execution):
    """PENDING -> RUNNING."""
    return _transition(execution, ExecutionStatus.RUNNING)


def finish_execution(execution, status, output=None, error=None, completed_at=None,
                     nodes_executed=None, tokens_used=None, cost=None, logs=None):
    """RUNNING -> COMPLETED, FAILED (an `error` is required) or CANCELLED; sets the duration."""
    status = ExecutionStatus(status)
    if status not in rules.TERMINAL:
        raise RuleViolation('finish_execution takes COMPLETED, FAILED or CANCELLED, not %s'
                            % status.value)
    if status is ExecutionStatus.FAILED and not error:
        raise RuleViolation('a FAILED execution needs an error message')
    completed_at = completed_at or _now()
    if completed_at < execution.started_at:
        raise RuleViolation('completed_at %s is before started_at %s'
                            % (completed_at.isoformat(), execution.started_at.isoformat()))
    values = {'completed_at': completed_at, 'output': output, 'error': error,
              'duration': rules.duration_ms(execution.started_at, completed_at, execution.id)}
    if nodes_executed is not None:
        size = len(Workflow.get_by_id(execution.workflow_id).nodes)
        if not 0 <= nodes_executed <= size:
            raise RuleViolation('nodes_executed %d is outside 0..%d, the workflow\'s node count'
                                % (nodes_executed, size))
        values['nodes_executed'] = nodes_executed
    for key, value in (('tokens_used', tokens_used), ('cost', cost), ('logs', logs)):
        if value is not None:
            values[key] = value
    return _transition(execution, status, **values)
