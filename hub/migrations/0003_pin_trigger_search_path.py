"""Pin the search_path of the updated_at trigger function (and name what its body uses).

0001 created public.hub_touch_updated_at() with the caller's search_path: the owner's bulk
updates (seeding, imports, `templates load`) then resolve its names in whatever schemas the
session put first, pg_temp included. pg_catalog first and pg_temp last, explicitly, leaves
nothing a session creates to stand in for now() or the types. Frozen SQL, like 0001.
"""

UP = r"""
CREATE OR REPLACE FUNCTION public.hub_touch_updated_at() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := pg_catalog.now();
    END IF;
    RETURN NEW;
END
$$;
"""

# The qualified body behaves exactly as 0001's; only the pinned setting is taken back.
DOWN = r"""
ALTER FUNCTION public.hub_touch_updated_at() RESET search_path;
"""


def up(migrator, db):
    db.execute_sql(UP)


def down(migrator, db):
    db.execute_sql(DOWN)
