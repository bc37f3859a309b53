"""The invariants every writer keeps: the seeder, the operations (hub.workflows, hub.agents,
hub.teams) and therefore every script. One definition each.

    >>> from hub import rules
    >>> from hub.models import ExecutionStatus as S
    >>> rules.check_transition('x', S.PENDING, S.RUNNING)        # fine
    >>> rules.check_transition('x', S.COMPLETED, S.RUNNING)
    Traceback (most recent call last):
    hub.errors.RuleViolation: execution 'x' is COMPLETED and cannot become RUNNING; executions go PENDING -> RUNNING -> COMPLETED, FAILED or CANCELLED
    >>> rules.success_rate(completed=3, failed=1)
    0.75
    >>> rules.mean_duration(total_ms=900, completed=3)
    300.0

Counters agree with the rows they summarise:
- `execution_count` counts every execution row of the parent, whatever its status;
- `last_executed` is the latest `started_at` among them;
- `success_rate` is COMPLETED / (COMPLETED + FAILED): running, pending and cancelled runs have
  no outcome yet (NULL while nothing has finished);
- `avg_response_time` is the mean `duration` (ms) of the COMPLETED runs (NULL without any).
"""
from hub.errors import RuleViolation  # noqa: F401  (hub.rules.RuleViolation, as before)
from hub.models import ExecutionStatus as S

TERMINAL = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
TRANSITIONS = {S.PENDING: frozenset({S.RUNNING}), S.RUNNING: TERMINAL}


def check_transition(execution_id, current, new):
    current, new = S(current), S(new)
    if new not in TRANSITIONS.get(current, ()):
        raise RuleViolation(
            'execution %r is %s and cannot become %s; executions go PENDING -> RUNNING -> '
            'COMPLETED, FAILED or CANCELLED' % (execution_id, current.value, new.value))


#: The `duration` columns are PostgreSQL `integer` milliseconds (Prisma's `Int`), so
#: a run can last at most 2**31 - 1 ms, about 24.8 days.
MAX_DURATION_MS = 2 ** 31 - 1


def check_duration(ms, what='the execution'):
    """`ms` if a `duration` column can hold it; RuleViolation naming the limit otherwise."""
    if ms > MAX_DURATION_MS:
        raise RuleViolation(
            '%s would last %d ms (%.1f days); duration is an integer column that holds '
            'at most %d ms (24.8 days): give a completed_at (or duration) within 24.8 days of '
            'started_at' % (what, ms, ms / 86400000, MAX_DURATION_MS))
    return ms


def duration_ms(started_at, completed_at, execution_id=None):
    """Whole milliseconds between two datetimes (the `duration` columns), checked to fit."""
    ms = round((completed_at - started_at).total_seconds() * 1000)
    return check_duration(ms, 'execution %r' % execution_id if execution_id else 'the execution')


def success_rate(completed, failed):
    finished = completed + failed
    return completed / finished if finished else None


def mean_duration(total_ms, completed):
    return total_ms / completed if completed else None


# The same rules as one statement, for writers that change rows one at a time.
REFRESH_AGENT = """
UPDATE ai_agents a SET execution_count = s.runs, success_rate = s.rate, avg_response_time = s.avg_ms
FROM (SELECT count(*) AS runs,
             count(*) FILTER (WHERE status = 'COMPLETED')::float8
                 / NULLIF(count(*) FILTER (WHERE status IN ('COMPLETED', 'FAILED')), 0) AS rate,
             avg(duration) FILTER (WHERE status = 'COMPLETED')::float8 AS avg_ms
      FROM agent_executions WHERE agent_id = %s) s
WHERE a.id = %s"""
