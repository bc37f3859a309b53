"""Agent operations: record an execution and keep the agent's counters true.

    >>> import hub
    >>> from hub import agents
    >>> db = hub.connect()
    >>> agent = hub.AIAgent.select().order_by(hub.AIAgent.id).first()   # one of yours
    >>> runs = agent.execution_count
    >>> agents.record_execution(agent, 'Summarise the ticket', {'ticket': 4211},
    ...                         status='COMPLETED', duration=1840, tokens_used=950)
    <AgentExecution: c...>
    >>> agent.execution_count - runs, 0 <= agent.success_rate <= 1   # recomputed from the rows
    (1, True)

The model and provider come from the agent's own `model_config`; execution_count, success_rate
and avg_response_time are recomputed from the agent's execution rows (hub.rules) in the same
transaction, so they can never drift from the rows.
"""
import datetime

from hub import rules
from hub.connection import database
from hub.models import AgentExecution, AIAgent, ExecutionStatus, WorkflowExecution
from hub.rules import RuleViolation


def record_execution(agent, task, input, status, started_at=None, duration=None, output=None,
                     tokens_used=0, cost=0, workflow_execution=None):
    """Insert one agent execution and refresh the agent's counters; returns the row.

    A finished run (COMPLETED, FAILED, CANCELLED) needs its `duration` in milliseconds;
    `workflow_execution`, when given, must belong to the agent's organization.
    """
    status = ExecutionStatus(status)
    started_at = started_at or datetime.datetime.now(datetime.timezone.utc)
    completed_at = None
    if status in rules.TERMINAL:
        if duration is None or duration < 0:
            raise RuleViolation('a %s agent execution needs a duration >= 0 (ms), got %r'
                                % (status.value, duration))
        rules.check_duration(duration, 'an execution of agent %r' % agent.id)
        completed_at = started_at + datetime.timedelta(milliseconds=duration)
    elif duration is not None:
        raise RuleViolation('a %s agent execution has no duration yet' % status.value)
    parent_id = getattr(workflow_execution, 'id', workflow_execution)
    config = agent.model_config or {}
    with database.atomic():
        if parent_id is not None:
            parent = WorkflowExecution.get_or_none(WorkflowExecution.id == parent_id)
            if parent is None or parent.organization_id != agent.organization_id:
                raise RuleViolation('workflow execution %r is not in organization %r'
                                    % (parent_id, agent.organization_id))
        row = AgentExecution.create(
            organization=agent.organization_id, agent=agent.id, workflow_execution=parent_id,
            task=task, input=input, output=output, status=status, started_at=started_at,
            completed_at=completed_at, duration=duration, tokens_used=tokens_used, cost=cost,
            model=config.get('model'), provider=config.get('provider'))
        refresh_counters(agent)
    return row


def refresh_counters(agent):
    """Recompute execution_count, success_rate and avg_response_time from the rows."""
    database.execute_sql(rules.REFRESH_AGENT, (agent.id, agent.id))
    fresh = AIAgent.get_by_id(agent.id)
    agent.execution_count = fresh.execution_count
    agent.success_rate = fresh.success_rate
    agent.avg_response_time = fresh.avg_response_time
    return agent
