"""hub on a Citus cluster: detecting the extension, and distributing the schema (docs/citus.md).

    >>> import hub.citus, hub.connection
    >>> database = hub.connection.open_database(hub.connection.resolve_url())
    >>> hub.citus.enabled(database)       # a plain PostgreSQL: no citus extension here
    False
    >>> hub.citus.distribute(database)    # nothing to do without Citus
    []

Everything hub does differently on Citus asks `enabled(db)` first: whether the citus extension
is installed in this database (a coordinator, or a worker's copy of the database). A server
where Citus is only preloaded, but never created in the database, is a single node for hub.

`distribute(db)` decides from the catalog, not from a list of names, so a table nobody has
written yet is placed by the same rule as ours (docs/citus.md):

- a table of schema public with a NOT NULL `organization_id` column is a tenant table:
  distributed by `organization_id`, colocated with the other tenant tables; every primary key
  and unique key gains `organization_id` first (a key without the distribution column cannot
  hold across shards), and a foreign key between tenant tables is over `(organization_id, x)`;
- every other table of schema public is a reference table (a copy on every node):
  `organizations`, `users`, `workflow_templates` (whose `organization_id` is nullable: the
  public templates have none), and any new table without `organization_id`; and, whatever
  its columns, `organization_members`, which every row-level-security policy reads on every
  shard (REPLICATED);
- hub's own bookkeeping (the migration history `hub_migrations`, schema `hub_internal`) stays
  a plain table of the coordinator: only hub reads it, always through the coordinator.

`hub db migrate` calls it at the end of every migration, in the migration's transaction, so a
migration that creates a table commits it distributed (hub.lifecycle); `hub db distribute`
runs it alone, for a database that got Citus after it was migrated.
"""
import re

from hub.catalog import HISTORY_TABLE, SCHEMA
from hub.sqltext import identifier

#: The distribution column of every tenant table.
TENANT_COLUMN = 'organization_id'
#: Reference tables whatever their columns: the memberships, which the row-level-security
#: helpers (hub.rls.HELPERS) read in every policy on every shard. Distributed, each helper
#: call was a distributed query nested in the shard's, per row (a tenant's query under RLS took
#: 36-49x a single node's); as a reference table every node holds a copy, and the check is a
#: local index lookup, as on one server.
REPLICATED = ('organization_members',)


def enabled(db):
    """Whether the citus extension is installed in the database `db` is connected to."""
    return bool(db.execute_sql(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')"
    ).fetchone()[0])


def _rows(db, sql, params=()):
    return db.execute_sql(sql, params).fetchall()


def _qualified(table):
    return '%s.%s' % (identifier(SCHEMA), identifier(table))


# -- what each table should be ----------------------------------------------------------------

def tables(db):
    """{table: 'distributed' | 'reference'}: what `distribute` makes of each table of schema
    public (hub's history excluded), decided from the catalog (see the module's docstring)."""
    rows = _rows(db, """
        SELECT c.relname, EXISTS (
                   SELECT 1 FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attname = %s AND a.attnotnull
                     AND NOT a.attisdropped)
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND c.relname <> %s
        ORDER BY c.oid""", (TENANT_COLUMN, SCHEMA, HISTORY_TABLE))
    return {name: 'distributed' if tenant and name not in REPLICATED else 'reference'
            for name, tenant in rows}


def state(db):
    """{table: 'distributed' | 'reference' | 'local'} as Citus has the tables of schema public
    now ('local': a plain or Citus-managed local table)."""
    rows = _rows(db, """
        SELECT p.logicalrelid::regclass::text, p.partmethod, p.repmodel
        FROM pg_catalog.pg_dist_partition p
        JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s""", (SCHEMA,))
    found = {}
    for name, method, model in rows:
        name = name.rpartition('.')[2].strip('"')
        if method == 'h':
            found[name] = 'distributed'
        elif method == 'n' and model == 't':
            found[name] = 'reference'
    return found


# -- keys and foreign keys --------------------------------------------------------------------

_ACTIONS = {'a': 'NO ACTION', 'r': 'RESTRICT', 'c': 'CASCADE', 'n': 'SET NULL', 'd': 'SET DEFAULT'}


def _keys(db, table):
    """[(name, kind 'p'|'u'|'i', [columns], definition)]: the primary key, the unique
    constraints and the unique indexes that back no constraint, of `table`."""
    return [(name, kind, list(cols), definition) for name, kind, cols, definition in _rows(db, """
        SELECT i.relname, COALESCE(c.contype::text, 'i'),
               array(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(num, ord)
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.num
                     ORDER BY k.ord),
               pg_catalog.pg_get_indexdef(x.indexrelid)
        FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_catalog.pg_constraint c ON c.conindid = x.indexrelid AND c.contype IN ('p', 'u')
        WHERE x.indrelid = %s::regclass AND x.indisunique
        ORDER BY COALESCE(c.contype = 'p', false) DESC, i.relname""", (_qualified(table),))]


class ForeignKey:
    """A foreign key as the catalog has it, to drop and add back (possibly reshaped)."""

    def __init__(self, name, table, cols, ref, ref_cols, on_update, on_delete, set_cols,
                 deferrable, deferred):
        self.name, self.table, self.cols, self.ref, self.ref_cols = name, table, cols, ref, ref_cols
        self.on_update, self.on_delete, self.set_cols = on_update, on_delete, set_cols
        self.deferrable, self.deferred = deferrable, deferred

    def sql(self):
        delete = self.on_delete
        if self.set_cols:
            delete += ' (%s)' % ', '.join(map(identifier, self.set_cols))
        return ('ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)%s%s%s'
                % (_qualified(self.table), identifier(self.name), ', '.join(map(identifier, self.cols)),
                   _qualified(self.ref), ', '.join(map(identifier, self.ref_cols)),
                   '' if self.on_update == 'NO ACTION' else ' ON UPDATE ' + self.on_update,
                   '' if delete == 'NO ACTION' else ' ON DELETE ' + delete,
                   (' DEFERRABLE' + (' INITIALLY DEFERRED' if self.deferred else ''))
                   if self.deferrable else ''))


def _foreign_keys(db, names):
    """The ForeignKeys of schema public whose table or referenced table is in `names`."""
    rows = _rows(db, """
        SELECT c.conname, t.relname,
               array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(num, ord)
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num
                     ORDER BY k.ord),
               r.relname,
               array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(num, ord)
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num
                     ORDER BY k.ord),
               c.confupdtype, c.confdeltype,
               array(SELECT a.attname::text FROM unnest(c.confdelsetcols) WITH ORDINALITY k(num, ord)
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num
                     ORDER BY k.ord),
               c.condeferrable, c.condeferred
        FROM pg_catalog.pg_constraint c
        JOIN pg_catalog.pg_class t ON t.oid = c.conrelid
        JOIN pg_catalog.pg_class r ON r.oid = c.confrelid
        WHERE c.contype = 'f' AND t.relnamespace = %s::regnamespace
          AND r.relnamespace = %s::regnamespace AND (t.relname = ANY (%s) OR r.relname = ANY (%s))
        ORDER BY t.oid, c.conname""", (SCHEMA, SCHEMA, list(names), list(names)))
    return [ForeignKey(name, table, list(cols), ref, list(ref_cols), _ACTIONS[upd], _ACTIONS[dele],
                       list(set_cols), deferrable, deferred)
            for name, table, cols, ref, ref_cols, upd, dele, set_cols, deferrable, deferred
            in rows]


def shaped(fk, kinds):
    """`fk` as it must be between tables of `kinds` ({table: 'distributed'|'reference'}): a key
    between tenant tables is over (organization_id, ...) on both sides, and its ON DELETE SET
    NULL becomes NO ACTION plus the trigger `set_null_trigger` (Citus refuses SET NULL (columns),
    issue 7132, and a plain SET NULL would clear organization_id). Returns (fk, set-null
    columns or [])."""
    if not (kinds.get(fk.table) == kinds.get(fk.ref) == 'distributed'):
        return fk, []
    cols, ref_cols = list(fk.cols), list(fk.ref_cols)
    if TENANT_COLUMN not in cols:
        cols, ref_cols = [TENANT_COLUMN] + cols, [TENANT_COLUMN] + ref_cols
    nulled = []
    if fk.on_delete == 'SET NULL':
        nulled = fk.set_cols or [c for c in fk.cols if c != TENANT_COLUMN]
    new = ForeignKey(fk.name, fk.table, cols, fk.ref, ref_cols, fk.on_update,
                     'NO ACTION' if nulled else fk.on_delete, [], fk.deferrable, fk.deferred)
    return new, nulled


def _with_tenant(cols):
    return [TENANT_COLUMN] + [c for c in cols if c != TENANT_COLUMN]


def key_changes(db, table):
    """The statements that give every primary and unique key of tenant `table` the
    distribution column first (same names); a unique key that then equals the primary key is
    dropped (the primary key's index serves it, and the foreign keys over it)."""
    out = []
    keys = _keys(db, table)
    pk = next((cols for _, kind, cols, _ in keys if kind == 'p'), None)
    new_pk = _with_tenant(pk) if pk is not None else None
    for name, kind, cols, definition in keys:
        if kind == 'p':
            if cols != new_pk:
                out.append('ALTER TABLE %s DROP CONSTRAINT %s' % (_qualified(table), identifier(name)))
                out.append('ALTER TABLE %s ADD CONSTRAINT %s PRIMARY KEY (%s)' % (
                    _qualified(table), identifier(name), ', '.join(map(identifier, new_pk))))
            continue
        if kind == 'u' and new_pk is not None and sorted(cols) == sorted(new_pk):
            out.append('ALTER TABLE %s DROP CONSTRAINT %s' % (_qualified(table), identifier(name)))
            continue
        if TENANT_COLUMN in cols:
            continue
        wanted = ', '.join(map(identifier, [TENANT_COLUMN] + cols))
        if kind == 'u':
            out.append('ALTER TABLE %s DROP CONSTRAINT %s' % (_qualified(table), identifier(name)))
            out.append('ALTER TABLE %s ADD CONSTRAINT %s UNIQUE (%s)' % (
                _qualified(table), identifier(name), wanted))
        else:
            # A unique index: the same definition, the distribution column first in its key.
            opening = definition.index(' USING ')
            opening = definition.index('(', opening) + 1
            out.append('DROP INDEX %s.%s' % (identifier(SCHEMA), identifier(name)))
            out.append('%s%s, %s' % (definition[:opening], identifier(TENANT_COLUMN),
                                     definition[opening:]))
    return out


def key_restores(db, table):
    """The statements that give back a table of hub's models the keys it has on a single node,
    where `key_changes` put organization_id first (a table distributed by an earlier hub that
    is now a reference table): a key whose columns without that first organization_id are a
    unique key of the model."""
    from hub import models

    model = models.model_for(table)
    if model is None:
        return []
    single = {cols for cols, unique in models.declared_indexes(model) if unique}
    out = []
    for name, kind, cols, definition in _keys(db, table):
        rest = tuple(cols[1:])
        if cols[0] != TENANT_COLUMN or tuple(cols) in single or rest not in single:
            continue
        if kind == 'i':
            out.append('DROP INDEX %s.%s' % (identifier(SCHEMA), identifier(name)))
            out.append(definition.replace('(%s, ' % identifier(TENANT_COLUMN), '(', 1))
            continue
        out.append('ALTER TABLE %s DROP CONSTRAINT %s' % (_qualified(table), identifier(name)))
        out.append('ALTER TABLE %s ADD CONSTRAINT %s %s (%s)' % (
            _qualified(table), identifier(name), 'PRIMARY KEY' if kind == 'p' else 'UNIQUE',
            ', '.join(map(identifier, rest))))
    return out


# -- triggers ---------------------------------------------------------------------------------

#: ON DELETE SET NULL (columns) of a key between tenant tables, as a trigger (Citus refuses the
#: clause, issue 7132): before a referenced row goes, the referencing rows of its organization
#: get those columns cleared, as the foreign key's action would. Arguments: the referencing
#: table, its key columns, the referenced columns, the columns to clear (comma-separated).
#: Not SECURITY DEFINER (the audit refuses one owned by a superuser): the clearing UPDATE runs as
#: whoever deletes, under their policies.
SET_NULL_FUNCTION = r"""
CREATE OR REPLACE FUNCTION public.hub_citus_set_null() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $hub_fn$
DECLARE
    cols pg_catalog.text[] := pg_catalog.string_to_array(TG_ARGV[1], ',');
    refs pg_catalog.text[] := pg_catalog.string_to_array(TG_ARGV[2], ',');
    cleared pg_catalog.text[] := pg_catalog.string_to_array(TG_ARGV[3], ',');
    sets pg_catalog.text;
    matches pg_catalog.text;
BEGIN
    -- Before OLD is read: on any other table its types are the caller's to choose.
    IF TG_TABLE_SCHEMA OPERATOR(pg_catalog.<>) 'public' OR TG_WHEN OPERATOR(pg_catalog.<>) 'BEFORE'
            OR TG_OP OPERATOR(pg_catalog.<>) 'DELETE' OR TG_LEVEL OPERATOR(pg_catalog.<>) 'ROW'
            OR TG_NARGS OPERATOR(pg_catalog.<>) 4 THEN
        RAISE EXCEPTION USING ERRCODE = 'triggered_action_exception',
            MESSAGE = 'hub_citus_set_null() is a trigger of the tables in schema public (BEFORE '
                      'DELETE, FOR EACH ROW, 4 arguments), not of ' || TG_TABLE_SCHEMA || '.'
                      || TG_TABLE_NAME;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.format('%I = NULL', c), ', ') INTO sets
    FROM pg_catalog.unnest(cleared) c;
    SELECT pg_catalog.string_agg(pg_catalog.format('%I OPERATOR(pg_catalog.=) ($1).%I',
                                                   cols[i], refs[i]), ' AND ')
    INTO matches FROM pg_catalog.generate_subscripts(cols, 1) i;
    EXECUTE pg_catalog.format('UPDATE public.%I SET %s WHERE %s', TG_ARGV[0], sets, matches)
        USING OLD;
    RETURN OLD;
END
$hub_fn$
"""

#: A trigger on a reference table runs once per copy, so a clock read in it (now(),
#: CURRENT_TIMESTAMP) gives each copy its own value. Citus gives each distributed transaction
#: one id, with the coordinator's timestamp, on every node it reaches
#: (get_current_transaction_id()); outside one (a local statement) it is now(). A trigger
#: function of a reference table that reads the transaction's clock gets a copy,
#: public.hub_citus_<name>(), with that value in its place, and the table's triggers call the
#: copy: hub_touch_updated_at() (updated_at), hub_membership_consent() (accepted_at), and any
#: function a later migration writes. The copy is made again whenever its original changes.
STAMP = ('COALESCE(CASE WHEN (pg_catalog.get_current_transaction_id()).transaction_number '
         'OPERATOR(pg_catalog.<>) 0 THEN (pg_catalog.get_current_transaction_id())'
         '.transaction_stamp END, pg_catalog.now())')
#: The transaction's clock, as a trigger function may read it.
_CLOCK = re.compile(r'(?:\bpg_catalog\.)?\b(?:now|transaction_timestamp|statement_timestamp)\(\)'
                    r'|\bcurrent_timestamp\b(?!\s*\()', re.I)
#: Values no stamp can make equal on every copy: refused in a trigger of a reference table.
_PER_COPY = re.compile(r'\b(clock_timestamp|timeofday|random|gen_random_uuid|uuid_generate_v\w*|'
                       r'nextval)\s*\(', re.I)
_COPY_PREFIX = 'hub_citus_'


def stamped_name(name):
    """The name of trigger function `name`'s copy for reference tables."""
    return _COPY_PREFIX + (name[4:] if name.startswith('hub_') else name)


def _stamped(definition, name, table):
    """CREATE OR REPLACE of the copy of function `name` (pg_get_functiondef `definition`) for
    reference table `table`, or None when it reads no clock; MigrationError when it calls a
    function whose value differs on each copy."""
    from hub.errors import MigrationError

    volatile = _PER_COPY.search(definition)
    if volatile:
        raise MigrationError(
            'trigger function %s() of reference table %s calls %s(), which gives each of the '
            'table\'s copies on the Citus nodes another value; set the value in the statement '
            '(or a column default) instead of the trigger' % (name, table, volatile.group(1)))
    if not _CLOCK.search(definition):
        return None
    text = _accepting_shards(_CLOCK.sub(lambda m: STAMP, definition))
    return re.sub(r'(FUNCTION [^(]*?)\b%s\(' % re.escape(name),
                  lambda m: m.group(1) + stamped_name(name) + '(', text, count=1)


def _function(db, name):
    """pg_get_functiondef of public.`name`(), or None."""
    row = db.execute_sql("SELECT pg_catalog.pg_get_functiondef(p.oid) FROM pg_catalog.pg_proc p "
                         "WHERE p.pronamespace = %s::regnamespace AND p.proname = %s "
                         "AND p.pronargs = 0", (SCHEMA, name)).fetchone()
    return row[0] if row else None


def _revoke(db, name):
    """EXECUTE on trigger function `name` for nobody but its owner (as migration 0007): by
    name as well as PUBLIC, since Supabase's default privileges grant the API roles their own."""
    from hub.catalog import API_ROLES

    roles = [r[0] for r in _rows(db, 'SELECT rolname FROM pg_catalog.pg_roles '
                                     'WHERE rolname = ANY (%s) ORDER BY 1', (list(API_ROLES),))]
    return ['REVOKE ALL ON FUNCTION public.%s() FROM %s' % (name, ', '.join(['PUBLIC'] + roles))]


def _triggers(db, table):
    """[(name, function, definition)] of `table`'s own triggers."""
    return _rows(db, """
        SELECT t.tgname, p.proname, pg_catalog.pg_get_triggerdef(t.oid)
        FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
        WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal ORDER BY t.tgname""",
                 (_qualified(table),))


#: hub's trigger functions check which table fired them (migration 0007) by its oid; on a
#: worker the table firing is a shard (organization_members_102040), so the check also accepts
#: a shard Citus knows, of that table, in schema public.
_GUARD = re.compile(r"TG_RELID OPERATOR\(pg_catalog\.<>\) '(public)\.(\w+)'::pg_catalog\.regclass")
_SHARD_GUARD = (r"(TG_RELID OPERATOR(pg_catalog.<>) '\1.\2'::pg_catalog.regclass AND NOT ("
                r"TG_TABLE_SCHEMA OPERATOR(pg_catalog.=) '\1' AND TG_TABLE_NAME OPERATOR(pg_catalog.~) "
                r"'^\2_[0-9]+$' AND pg_catalog.relation_is_a_known_shard(TG_RELID)))")


def _accepting_shards(definition):
    """Function `definition` with its table check (by oid) also accepting that table's shards;
    `definition` itself when it has no such check, or has it already."""
    if 'relation_is_a_known_shard' in definition:
        return definition
    return _GUARD.sub(_SHARD_GUARD, definition)


def _guards(db, names):
    """CREATE OR REPLACE of each trigger function on a table of `names` whose table check
    names the table by oid only, with the check that also accepts its shards."""
    out = []
    for oid, definition in _rows(db, """
            SELECT DISTINCT p.oid, pg_catalog.pg_get_functiondef(p.oid)
            FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
            JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
            WHERE c.relnamespace = %s::regnamespace AND c.relname = ANY (%s)
              AND NOT t.tgisinternal ORDER BY p.oid""", (SCHEMA, list(names))):
        accepting = _accepting_shards(definition)
        if accepting != definition:
            out.append(accepting)
    return out


# -- distribute -------------------------------------------------------------------------------

#: Settings of the distributing transaction: triggers on distributed tables (hub's, on every
#: tenant table) are refused without the first; the second has Citus use one connection per
#: node, as it must after writing to a reference table in the same transaction.
SETTINGS = ("SET LOCAL citus.enable_unsafe_triggers = on",
            "SET LOCAL citus.multi_shard_modify_mode = 'sequential'")


def prepare(db):
    """SETTINGS for the current transaction, on a database with Citus: what a migration's DDL
    on distributed tables needs, set before it runs. Returns what hub.migrate.OneByOne tries
    when Citus refuses one of the migration's statements: `distribute` (a table the migration
    created must be distributed before a key may reference a distributed table from it). None,
    and nothing done, without Citus."""
    if not enabled(db):
        return None
    for statement in SETTINGS:
        db.execute_sql(statement)
    return distribute


def plan(db):
    """[(statement, what it does or None)]: what `distribute` runs now. [] when every table of
    schema public is what it should be, and on a database without Citus."""
    if not enabled(db):
        return []
    wanted, now = tables(db), state(db)
    todo = [t for t, kind in wanted.items() if now.get(t) != kind]
    if not todo:
        return _trigger_plan(db, wanted)
    # A tenant table distributed before it became one of REPLICATED (the memberships, by an
    # earlier hub) is turned into a reference table; any other change of placement is refused.
    regathered = [t for t in todo if now.get(t) == 'distributed' and wanted[t] == 'reference'
                  and t in REPLICATED]
    unexpected = [t for t in todo if now.get(t) in ('distributed', 'reference')
                  and t not in regathered]
    if unexpected:
        from hub.errors import MigrationError
        t = unexpected[0]
        raise MigrationError(
            'table %s is a %s table of Citus, but hub makes it a %s one (%s); undistribute it '
            '(SELECT undistribute_table(\'%s\')) and run `hub db distribute` again'
            % (t, now[t], wanted[t], 'it has a NOT NULL organization_id' if wanted[t] ==
               'distributed' else 'it has no NOT NULL organization_id', _qualified(t)))
    out = [(s, None) for s in SETTINGS]
    fks = _foreign_keys(db, todo)
    for fk in fks:
        out.append(('ALTER TABLE %s DROP CONSTRAINT %s' % (_qualified(fk.table), identifier(fk.name)),
                    None))
    for table in todo:
        if wanted[table] == 'distributed':
            out.extend((s, None) for s in key_changes(db, table))
    for table in regathered:
        out.append(("SELECT pg_catalog.undistribute_table('%s')" % _qualified(table), None))
        out.extend((s, None) for s in key_restores(db, table))
    for table in todo:
        if wanted[table] == 'reference':
            out.append(("SELECT pg_catalog.create_reference_table('%s')" % _qualified(table),
                        'table %s: reference table (a copy on every node)' % table))
    colocated = _colocation(db)
    for table in todo:
        if wanted[table] == 'distributed':
            out.append(("SELECT pg_catalog.create_distributed_table('%s', '%s', colocate_with "
                        "=> '%s')" % (_qualified(table), TENANT_COLUMN,
                                      _qualified(colocated) if colocated else 'none'),
                        'table %s: distributed by %s%s' % (
                            table, TENANT_COLUMN,
                            ', colocated with %s' % colocated if colocated else '')))
            colocated = colocated or table
    nulled = []
    for fk in fks:
        new, cleared = shaped(fk, wanted)
        out.append((new.sql(), None))
        if cleared:
            nulled.append((new, cleared))
    out.extend(_trigger_plan(db, wanted, nulled))
    return out


def _colocation(db):
    """The tenant table the others are colocated with: the first distributed by
    organization_id, or None before there is one."""
    row = db.execute_sql("""
        SELECT c.relname FROM pg_catalog.pg_dist_partition p
        JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid
        WHERE c.relnamespace = %s::regnamespace AND p.partmethod = 'h'
          AND pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) = %s
        ORDER BY c.oid LIMIT 1""", (SCHEMA, TENANT_COLUMN)).fetchone()
    return row[0] if row else None


def _trigger_plan(db, wanted, nulled=()):
    """The trigger changes Citus needs: on reference tables, triggers whose function reads the
    transaction's clock call its stamped copy (STAMP); the SET NULL triggers of `nulled`
    [(ForeignKey, columns)]; and the table checks of hub's trigger functions that accept
    shards."""
    out = []
    ours = {r[0] for r in _rows(db, r"""
        SELECT proname FROM pg_catalog.pg_proc
        WHERE pronamespace = %s::regnamespace AND proname LIKE 'hub\_citus\_%%'
          AND pronargs = 0""", (SCHEMA,))}
    used, copies = set(), {}
    for table, kind in wanted.items():
        if kind == 'reference':
            out.extend(_stamp_plan(db, table, used, copies))
    if nulled and 'hub_citus_set_null' not in ours:
        out.append((SET_NULL_FUNCTION, None))
        out.extend((s, None) for s in _revoke(db, 'hub_citus_set_null'))
    for fk, cleared in nulled:
        trigger = identifier((fk.name[:50] + '_set_null'))
        out.append(("CREATE TRIGGER %s BEFORE DELETE ON %s FOR EACH ROW EXECUTE FUNCTION "
                    "public.hub_citus_set_null('%s', '%s', '%s', '%s')" % (
                        trigger, _qualified(fk.ref), fk.table, ','.join(fk.cols),
                        ','.join(fk.ref_cols), ','.join(cleared)),
                    'foreign key %s: ON DELETE SET NULL (%s) by trigger %s on %s' % (
                        fk.name, ', '.join(cleared), trigger, fk.ref)))
    out.extend((s, None) for s in _guards(db, list(wanted)))
    # Ours alone: once no trigger uses one (its tables reverted), it goes with them.
    used |= {r[0] for r in _rows(db, """
        SELECT DISTINCT p.proname FROM pg_catalog.pg_trigger t
        JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
        JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
        WHERE p.proname = ANY (%s) AND NOT (c.relnamespace = %s::regnamespace
                                            AND c.relname = ANY (%s))""",
                                 (sorted(ours), SCHEMA, [t for t, kind in wanted.items()
                                                         if kind == 'reference']))}
    if nulled:
        used.add('hub_citus_set_null')
    out.extend(('DROP FUNCTION public.%s()' % name, None) for name in sorted(ours - used))
    return out


def _original(db, function):
    """The trigger function a copy `function` was made from (hub_citus_x: hub_x, else x)."""
    if not function.startswith(_COPY_PREFIX) or function == 'hub_citus_set_null':
        return function
    rest = function[len(_COPY_PREFIX):]
    return 'hub_' + rest if _function(db, 'hub_' + rest) is not None else rest


def _stamp_plan(db, table, used, copies):
    """The steps that have reference table `table`'s triggers call the stamped copy of their
    function where it reads the clock; adds the copies they call to `used`. `copies` {trigger
    function: its copy's definition, or None} is shared by the tables of one plan, so that a
    function serving several (hub_touch_updated_at) is read and stamped once."""
    out = []
    for trigger, function, definition in _triggers(db, table):
        original = _original(db, function)
        if original not in copies:
            source = _function(db, original)
            copies[original] = _stamped(source, original, table) if source is not None else None
        text = copies[original]
        copy = stamped_name(original) if text is not None else original
        if text is not None and copy not in used:
            used.add(copy)
            if _function(db, copy) != text:  # new, or its original changed since
                out.append((text, None))
                out.extend((s, None) for s in _revoke(db, copy))
        if function != copy:
            out.append(('DROP TRIGGER %s ON %s' % (identifier(trigger), _qualified(table)), None))
            out.append((re.sub(r'(EXECUTE (?:FUNCTION|PROCEDURE) (?:public\.)?)%s\('
                               % re.escape(function), lambda m: m.group(1) + copy + '(',
                               definition, count=1),
                        'table %s: trigger %s calls %s()%s' % (
                            table, trigger, copy, '' if text is None else
                            ', %s() with the distributed transaction\'s timestamp for now() '
                            '(one value on every copy)' % original)))
    return out


def distribute(db):
    """Make every table of schema public what it should be on Citus (module docstring), in the
    current transaction (one of its own when there is none); returns one line per change.
    [] on a database without Citus, and when there is nothing to do (idempotent)."""
    with db.atomic():
        steps = plan(db)
        if steps:
            for statement in SETTINGS:
                db.execute_sql(statement)
        for statement, _ in steps:
            if statement not in SETTINGS:
                db.execute_sql(statement.replace('%', '%%'))  # no parameters: % is literal
    return [what for _, what in steps if what]


def distribute_database(db):
    """What `hub db distribute` runs: `distribute(db)` under hub's migration lock (no migration
    runs meanwhile), in one transaction; returns its lines ([]: nothing to do). Refuses
    (ConfigError, nothing changed) a database without the citus extension, and (DatabaseNewer)
    one migrated by a newer hub."""
    from hub import locks, migrate
    from hub.errors import ConfigError

    if not enabled(db):
        raise ConfigError('database "%s" has no citus extension: `hub db distribute` is for a '
                          'Citus coordinator (run CREATE EXTENSION citus there first); a single '
                          'PostgreSQL needs nothing distributed' % db.database)
    with migrate.conflicts('distribute the tables'), db.atomic():
        locks.hold(db, locks.MIGRATE)
        migrate.ensure_known(db)
        return distribute(db)


# -- what `hub db check` expects on Citus -----------------------------------------------------

def expected_indexes(found, kind):
    """hub.schema.expected_indexes of a table of `kind` ('distributed' or 'reference') as
    `distribute` leaves them: on a distributed table every unique key with organization_id
    first (the primary key (id) becomes (organization_id, id))."""
    if kind != 'distributed':
        return found
    return {(tuple(_with_tenant(cols)) if unique and TENANT_COLUMN not in cols else cols, unique)
            for cols, unique in found}


def expected_foreign_keys(found, table, kinds):
    """hub.schema.expected_foreign_keys of `table` as `distribute` leaves them: between tenant
    tables over (organization_id, ...), and NO ACTION where SET NULL was (a trigger does it)."""
    out = set()
    for cols, ref, ref_cols, on_delete in found:
        fk = ForeignKey('', table, list(cols), ref, list(ref_cols), 'NO ACTION',
                        on_delete.split(' (')[0], [], False, False)
        new, _ = shaped(fk, kinds)
        if new is fk:  # not between tenant tables: as on a single node
            out.add((cols, ref, ref_cols, on_delete))
        else:
            out.add((tuple(new.cols), ref, tuple(new.ref_cols), new.on_delete))
    return out


def differences(db, models):
    """[(table, message)]: where the live placement differs from what `distribute` makes:
    each table of `models` that is not yet distributed or reference as it should be, and each
    SET NULL trigger missing."""
    wanted, now = tables(db), state(db)
    out = []
    for model in models:
        table = model._meta.table_name
        if table in wanted and now.get(table) != wanted[table]:
            out.append((table, '%s: a %s table on Citus, hub makes it a %s table; run `hub db '
                        'distribute`' % (table, now.get(table, 'local'), wanted[table])))
    return out


def one_connection_per_worker(db):
    """Make the rest of the current transaction reach each worker over one connection
    (`SET LOCAL citus.multi_shard_modify_mode = 'sequential'`), in a transaction that reads a
    distributed table across its shards and then writes a reference table.

    A multi-shard statement may run over several connections per worker at once (a "parallel
    operation"). A reference table that distributed tables reference by foreign key (organizations,
    users, workflow_templates) must afterwards be written over the very connections that touched
    those shards, so Citus refuses the write ("cannot modify table ... because there was a
    parallel operation on a distributed table") and the transaction rolls back. Whether the read
    went parallel depends on how long its shards took (the executor adds connections as it
    waits), so without this the failure comes and goes with the load. Called only where
    `enabled(db)`: `hub seed`'s setup transaction and each of its batches (the credential key
    check reads integrations, then the marketplace or the batch writes reference tables), and
    `hub import`'s transaction (its id checks read every tenant table, then it writes
    organizations and users).
    """
    db.execute_sql("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
