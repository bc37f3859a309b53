"""The standalone started_at indexes of the three execution tables become BRIN.

A b-tree on started_at alone gives the planner an ordered path that ignores the tenant: a
tenant's unfiltered `ORDER BY started_at DESC LIMIT 50` (what supabase-js sends when row-level
security does the scoping) walked it backwards past every other tenant's rows, so the page cost
grew with the fleet (benchmarks/bench_fleet.py: 200 -> 2,000 organizations of the same size).
A BRIN index has no order to offer: the tenant's query streams from its own
(organization_id, started_at) index and sorts its own rows, and the platform's queries across
tenants by time range (executions are written in time order) still skip what is out of range.
The (organization_id, ...) indexes are unchanged. docs/rls.md has the figures.

`down` restores 0001's b-trees. Both directions rebuild the index under the table's lock.
Frozen SQL, like 0001.
"""

TABLES = ('workflow_executions', 'agent_executions', 'team_executions')

UP = r"""
DROP INDEX public.%(table)s_started_at;
CREATE INDEX %(table)s_started_at ON public.%(table)s USING brin (started_at);
"""

DOWN = r"""
DROP INDEX public.%(table)s_started_at;
CREATE INDEX %(table)s_started_at ON public.%(table)s (started_at);
"""


def up(migrator, db):
    for table in TABLES:
        db.execute_sql(UP % {'table': table})


def down(migrator, db):
    for table in TABLES:
        db.execute_sql(DOWN % {'table': table})
