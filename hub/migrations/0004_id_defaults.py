"""Database-side ids: every table's `id` defaults to a new cuid-style text id.

Clients that do not make ids themselves (supabase-js, PostgREST, psql) can insert without one;
Prisma's client-side cuids and hub.ids' still fit, since the format is the same: 'c' and 24
lowercase base-36 characters. Built-ins only (gen_random_uuid(), PostgreSQL 13+): no
extension to install, which a non-superuser owner may not be allowed to do. The function lives
in `public`, where the API roles may execute it (a default runs as the inserting role).
"""

UP = r"""
-- 24 characters from the random bytes of three v4 uuids (the version and variant bytes
-- skipped), each byte kept only below 252 = 7 * 36, so every character is equally likely.
CREATE FUNCTION public.hub_new_id() RETURNS text
LANGUAGE sql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'c' || string_agg(substr('0123456789abcdefghijklmnopqrstuvwxyz', b %% 36 + 1, 1), '')
    FROM (
        SELECT get_byte(r.u, i) AS b
        FROM (SELECT uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())
                     || uuid_send(gen_random_uuid()) AS u) r,
             generate_series(0, 47) AS i
        WHERE i %% 16 NOT IN (6, 8) AND get_byte(r.u, i) < 252
        LIMIT 24
    ) bytes
$$;
COMMENT ON FUNCTION public.hub_new_id() IS
    'A new cuid-style id (c + 24 base-36 characters): the default of every id column';

-- Every table of ours with a text id and no default yet (tables of earlier migrations).
DO $$
DECLARE t regclass;
BEGIN
    FOR t IN
        SELECT a.attrelid::regclass FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'hub_migrations'
          AND a.attname = 'id' AND a.atttypid = 'text'::regtype AND NOT a.atthasdef
        ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE %%s ALTER COLUMN id SET DEFAULT public.hub_new_id()', t);
    END LOOP;
END
$$;
"""

DOWN = r"""
DO $$
DECLARE t regclass;
BEGIN
    FOR t IN
        SELECT d.adrelid::regclass FROM pg_attrdef d
        JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
        WHERE a.attname = 'id' AND pg_get_expr(d.adbin, d.adrelid) LIKE '%%hub_new_id()'
    LOOP
        EXECUTE format('ALTER TABLE %%s ALTER COLUMN id DROP DEFAULT', t);
    END LOOP;
END
$$;
DROP FUNCTION IF EXISTS public.hub_new_id();
"""


def up(migrator, db):
    db.execute_sql(UP)


def down(migrator, db):
    db.execute_sql(DOWN)
