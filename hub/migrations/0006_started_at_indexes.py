"""Indexes that keep a tenant's cost to its own rows: started_at becomes BRIN, and one
workflow's executions are ordered by started_at in their own index.

A b-tree on started_at alone gives the planner an ordered path that ignores the tenant: a
tenant's unfiltered `ORDER BY started_at DESC LIMIT 50` (what supabase-js sends when row-level
security does the scoping) walked it backwards past every other tenant's rows, so the page cost
grew with the fleet (benchmarks/bench_fleet.py: the same tenant at 200, 2,000 and 20,000
organizations). A BRIN index has no order to offer: the tenant's query reads its own rows from
its (organization_id, ...) index, and the platform's queries across tenants by time range
(executions are written in time order) still skip what is out of range. Done on the three
execution tables, which share the shape.

`WHERE workflow_id = $1 ORDER BY started_at DESC LIMIT 50` read and sorted every execution of
the workflow (hundreds of milliseconds for a large tenant, filtered or not); on
(workflow_id, started_at) it reads 50 rows. The new index serves everything the workflow_id
index did (it leads with the column), so it replaces it.

`down` restores 0001's indexes. Both directions rebuild the indexes under the table's lock.
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

WORKFLOW_UP = r"""
CREATE INDEX workflow_executions_workflow_id_started_at
    ON public.workflow_executions (workflow_id, started_at);
DROP INDEX public.workflow_executions_workflow_id;
"""

WORKFLOW_DOWN = r"""
CREATE INDEX workflow_executions_workflow_id ON public.workflow_executions (workflow_id);
DROP INDEX public.workflow_executions_workflow_id_started_at;
"""


def up(migrator, db):
    for table in TABLES:
        db.execute_sql(UP % {'table': table})
    db.execute_sql(WORKFLOW_UP)


def down(migrator, db):
    db.execute_sql(WORKFLOW_DOWN)
    for table in TABLES:
        db.execute_sql(DOWN % {'table': table})
