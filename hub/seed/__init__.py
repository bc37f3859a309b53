"""Seed a database with realistic, deterministic organizations: `hub seed` as a library call.

    >>> import datetime
    >>> from hub import db, seed
    >>> database = db.bind(db.open_database(db.resolve_url()))
    >>> result = seed.seed_database(database, orgs=3, scale='small', seed=42,
    ...                             as_of=datetime.date(2025, 1, 31))
    >>> result.added, result.total_rows > 1000
    (3, True)
    >>> seed.seed_database(database, orgs=3, scale='small', seed=42,
    ...                    as_of=datetime.date(2025, 1, 31)).added   # already there
    0

What one call does, in order: apply pending migrations; install the row-level-security
policies when `hub.rls` exists and they are missing; with `reset`, empty every table; load the
marketplace (`hub.marketplace.load`); then generate and COPY the organizations that are not in
the database yet, one transaction per batch of organizations.

Organization i of seed s is generated from its own random stream (`pools.stream(s, i)`), so
its ids, names and timestamps do not depend on the other organizations: `orgs=11` gives the
rows of `orgs=10` plus one organization, and a second run with the same options finds every
organization present and adds nothing. Options that change content (scale, as_of) apply to
organizations added by that run; present ones are kept as they are (use `reset`).
"""
import datetime
import time

from hub.errors import ConfigError

DEFAULT_ORGS = 5
DEFAULT_SCALE = 'small'
DEFAULT_SEED = 42
#: Organizations are committed in batches of about this many rows (at least one organization).
BATCH_ROWS = 20000
# Held for the whole run, so two `hub seed` on one database queue up instead of racing.
LOCK_KEY = 0x6875627365656421
SCALE_NAMES = ('tiny', 'small', 'medium', 'large')


class SeedResult:
    """What a run did: rows per table, organizations added and kept, timings, setup steps."""

    def __init__(self, seed, scale, orgs, as_of):
        self.seed, self.scale, self.orgs, self.as_of = seed, scale, orgs, as_of
        self.added = 0
        self.kept = 0
        self.rows = {}
        self.seconds = 0.0
        self.migrated = []
        self.rls_installed = False
        self.templates = 0
        self.removed = None

    @property
    def total_rows(self):
        return sum(self.rows.values())

    @property
    def rows_per_second(self):
        return self.total_rows / self.seconds if self.seconds else 0.0

    def as_dict(self):
        return {'seed': self.seed, 'scale': self.scale, 'orgs': self.orgs,
                'as_of': self.as_of.isoformat(), 'added': self.added, 'kept': self.kept,
                'rows': dict(self.rows), 'total_rows': self.total_rows,
                'seconds': round(self.seconds, 3),
                'rows_per_second': round(self.rows_per_second, 1),
                'migrated': list(self.migrated), 'rls_installed': self.rls_installed,
                'templates': self.templates, 'removed': self.removed}


def parse_options(orgs, scale, seed, as_of):
    """Checked options: (orgs, scale name, seed, as_of date or datetime); ConfigError otherwise."""
    if isinstance(orgs, bool) or not isinstance(orgs, int) or orgs < 1:
        raise ConfigError('orgs must be a whole number of organizations, 1 or more; got %r'
                          % (orgs,))
    name = str(scale).strip().lower()
    if name not in SCALE_NAMES:
        raise ConfigError('unknown scale %r; use one of %s' % (scale, ', '.join(SCALE_NAMES)))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError('seed must be an integer; got %r' % (seed,))
    if as_of is None:
        as_of = datetime.datetime.now(datetime.timezone.utc).date()
    elif isinstance(as_of, str):
        try:
            as_of = datetime.date.fromisoformat(as_of.strip())
        except ValueError:
            raise ConfigError('bad as-of date %r; use YYYY-MM-DD, e.g. 2025-01-31' % as_of) \
                from None
    elif not isinstance(as_of, datetime.date):
        raise ConfigError('as_of must be a date; got %r' % (as_of,))
    if as_of.year < 1971:
        raise ConfigError('as-of date %s is too early: seeded history reaches weeks before it; '
                          'use a date after 1971-01-01' % as_of.isoformat())
    return orgs, name, seed, as_of


def seed_database(db, orgs=DEFAULT_ORGS, scale=DEFAULT_SCALE, seed=DEFAULT_SEED, as_of=None,
                  reset=False, progress=None, notify=None, batch_rows=BATCH_ROWS,
                  templates_dir=None):
    """Migrate, secure, load the marketplace and add the missing organizations of `seed`.

    `progress(added, total, rows)` is called with (0, organizations to add, 0) before the
    first batch, then with running totals after each committed batch; `notify(message)` for each
    setup step (migrations applied, RLS installed, data removed). `templates_dir` replaces the
    shipped marketplace folder. Bad options, a missing HUB_SECRET_KEY and a malformed template
    raise before anything is written.
    """
    from hub import crypto, marketplace, migrate
    from hub.db import bind
    from hub.seed.generate import SCALES, Context

    orgs, scale, seed, as_of = parse_options(orgs, scale, seed, as_of)
    credentials = crypto.Credentials(crypto.key_for(db))
    marketplace.read_fixtures(templates_dir)  # a bad template fails here, before any write
    bind(db)  # the marketplace loader writes through hub.models
    notify = notify or (lambda message: None)
    result = SeedResult(seed, scale, orgs, as_of)

    if migrate.pending(db):
        result.migrated = migrate.migrate(db)
        notify('applied migrations: %s' % ', '.join(result.migrated))
    rls = _rls_module()
    if rls is not None and not rls.installed(db):
        rls.install(db)
        result.rls_installed = True
        notify('installed the row-level-security policies')

    db.execute_sql('SELECT pg_advisory_lock(%s)', (LOCK_KEY,))
    try:
        if reset:
            result.removed = remove_all(db)
            notify('removed %(organizations)d organizations and %(users)d users'
                   % result.removed)
        ctx = Context(seed, SCALES[scale], as_of, [], credentials)
        # The marketplace predates every seeded organization: stamp it half a year before as-of.
        result.templates = marketplace.load(db, templates_dir,
                                            timestamp=_utc(ctx.anchor - 26 * 7 * 86400000))
        ctx.templates = system_templates(db)
        ids = [ctx.org_id(i) for i in range(orgs)]
        present = _present(db, ids)
        todo = [i for i, org_id in enumerate(ids) if org_id not in present]
        result.kept = orgs - len(todo)
        started = time.perf_counter()
        from hub.seed.loader import load_batches

        if progress is not None:
            progress(0, len(todo), 0)
        for batch, counts in load_batches(db, _batches(ctx, todo, batch_rows)):
            result.added += len(batch)
            for table, count in counts.items():
                result.rows[table] = result.rows.get(table, 0) + count
            if progress is not None:
                progress(result.added, len(todo), result.total_rows)
        result.seconds = time.perf_counter() - started
    finally:
        if not db.connection().closed:  # a lost session has released its lock already
            db.execute_sql('SELECT pg_advisory_unlock(%s)', (LOCK_KEY,))
    return result


def _rls_module():
    try:
        from hub import rls
    except ImportError:
        return None
    return rls


def _utc(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)


def _batches(ctx, indices, batch_rows):
    """Organizations generated one by one, grouped until a group holds `batch_rows` rows."""
    from hub.seed.generate import generate_org

    batch, rows = [], 0
    limit = 1  # the first batch is one organization: COPY starts while the next is generated
    for index in indices:
        org = generate_org(ctx, index)
        batch.append(org)
        rows += org.count()
        if rows >= limit:
            yield batch
            batch, rows, limit = [], 0, batch_rows
    if batch:
        yield batch


def _present(db, ids):
    present = set()
    for start in range(0, len(ids), 5000):
        cursor = db.execute_sql('SELECT id FROM organizations WHERE id = ANY(%s)',
                                (ids[start:start + 5000],))
        present.update(row[0] for row in cursor.fetchall())
    return present


def system_templates(db):
    """The marketplace templates (organization_id NULL) as dicts, in id order."""
    cursor = db.execute_sql(
        'SELECT id, name, description, nodes, edges, variables, tags FROM workflow_templates '
        'WHERE organization_id IS NULL ORDER BY id')
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def remove_all(db):
    """Empty every NeuroFlow Hub table (all organizations, users, templates); returns counts."""
    from hub.seed.generate import TABLES

    cursor = db.execute_sql('SELECT (SELECT count(*) FROM organizations), '
                            '(SELECT count(*) FROM users)')
    organizations, users = cursor.fetchone()
    db.execute_sql('TRUNCATE %s' % ', '.join(TABLES))
    return {'organizations': organizations, 'users': users}


def content_hashes(db, where=None):
    """{table: md5 of every row's text, in id order}: equal hashes mean byte-identical data.

    `where` maps a table to an SQL condition on its rows (alias `t`) to hash only those.
    """
    from hub.seed.generate import TABLES

    where = where or {}
    hashes = {}
    for table in TABLES:
        condition = where.get(table, 'true')
        cursor = db.execute_sql("SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), "
                                "'')) FROM %s t WHERE %s" % (table, condition))
        hashes[table] = cursor.fetchone()[0]
    return hashes
