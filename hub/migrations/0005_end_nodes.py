"""Rename the node type `output` to `end` in stored graphs (workflows, workflow_templates).

React Flow has a built-in node type named `output` (with its own CSS and a single target
handle); a graph that used the name for its last step rendered as that built-in whenever the
front end had not registered its own. The validator knows only `end` now, so graphs written
before must follow. `down` renames them back. Frozen SQL, like 0001.
"""

RENAME = r"""
UPDATE public.%(table)s t
SET nodes = (
    SELECT pg_catalog.jsonb_agg(
               CASE WHEN n ->> 'type' = '%(old)s'
                    THEN pg_catalog.jsonb_set(n, '{type}', '"%(new)s"') ELSE n END
               ORDER BY i)
    FROM pg_catalog.jsonb_array_elements(t.nodes) WITH ORDINALITY AS e(n, i))
WHERE t.nodes @> '[{"type": "%(old)s"}]';
"""

TABLES = ('workflows', 'workflow_templates')


def _rename(db, old, new):
    for table in TABLES:
        db.execute_sql(RENAME % {'table': table, 'old': old, 'new': new})


def up(migrator, db):
    _rename(db, 'output', 'end')


def down(migrator, db):
    _rename(db, 'end', 'output')
