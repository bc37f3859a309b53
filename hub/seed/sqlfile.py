r"""The seed as a data-only SQL file (`hub seed --sql`), written without a database.

    >>> import datetime, io
    >>> from hub.seed.sqlfile import write
    >>> out = io.StringIO()
    >>> result = write(out, orgs=2, scale='tiny', seed=42, as_of=datetime.date(2025, 1, 31))
    >>> out.getvalue().count('\n(') == result.templates + result.total_rows   # a row a line
    True

It holds exactly the rows `hub seed` with the same options writes into an empty, migrated
database: the marketplace's system templates, then the organizations batch by batch (the same
generator, organization i from its own random stream), and, with `auth_users`, the Supabase Auth
users the seeder adds on a database that has Supabase's `auth` schema (their ids are uuids, as
there). Nothing in it depends on a database or the clock, so the same options give the same
bytes.

Rows are multi-row INSERTs (the Supabase CLI's seed loader refuses COPY), at most BATCH_ROWS rows
or about BATCH_BYTES per statement. Values are the generator's COPY text turned into SQL string
literals (`E'...'` where COPY escaped something), which INSERT coerces to each column's type.
No statement sets a column to its default or fires a trigger that changes a value: the
updated_at trigger runs on UPDATE only, and the generator never updates. The integration
credentials are sealed with $HUB_SECRET_KEY exactly as `hub seed` seals them (Fernet with an IV
derived from the key and the row id, the token dated by the row's created_at), so the file
decrypts with that key and its bytes equal those `hub seed` writes with it.
"""
import os
import time

from hub.errors import ConfigError
from hub.seed import BATCH_ROWS as SEED_BATCH_ROWS

#: Rows per INSERT statement, and about how many bytes at most.
BATCH_ROWS = 1000
BATCH_BYTES = 1 << 20
MARKETPLACE_COLUMNS = ('id name description category nodes edges variables icon tags difficulty '
                       'estimated_time is_public is_featured created_at updated_at '
                       'organization_id created_by')


def _values(line):
    r"""One COPY text line as a VALUES tuple of SQL string literals (NULL for \N).

    COPY text escapes a backslash as \\ and tab, newline and carriage return as \t, \n, \r: the
    escapes of an E'' literal. So a line with a backslash becomes E'' literals as it is, and one
    without plain ones. Every backslash of a value comes doubled, so a single one followed by
    N and a quote is always the NULL marker.
    """
    body = line[:-1].replace("'", "''")
    if '\\' not in body:
        return "('" + body.replace('\t', "','") + "')"
    row = "(E'" + body.replace('\t', "',E'") + "')"
    return row.replace("E'\\N'", 'NULL')


def _inserts(out, table, columns, lines):
    """Write `lines` (COPY text) of `table` as INSERTs of at most BATCH_ROWS rows/BATCH_BYTES."""
    head = 'INSERT INTO public.%s (%s) VALUES\n' % (table, ', '.join(columns.split()))
    batch, size = [], 0
    for line in lines:
        values = _values(line)
        batch.append(values)
        size += len(values)
        if len(batch) >= BATCH_ROWS or size >= BATCH_BYTES:
            out.write(head + ',\n'.join(batch) + ';\n')
            batch, size = [], 0
    if batch:
        out.write(head + ',\n'.join(batch) + ';\n')


def _jsonb_order(value):
    """`value` with every object's keys in jsonb's order (shorter first, then bytewise), as
    the seeder reads the templates back from the database."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return {k: _jsonb_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [_jsonb_order(v) for v in value]
    return value


def marketplace_lines(rows, stamp_ms):
    """The system templates as COPY text lines of MARKETPLACE_COLUMNS, and the dicts the
    generator reads (`hub.seed.system_templates`), both in id order."""
    from hub.seed.copytext import NULL, boolean, esc, jsonb, line, text_array, ts

    rows = sorted(rows, key=lambda r: r['id'])
    lines = [line([
        r['id'], esc(r['name']), esc(r['description']), r['category'], jsonb(r['nodes']),
        jsonb(r['edges']), NULL if r['variables'] is None else jsonb(r['variables']),
        NULL if r['icon'] is None else esc(r['icon']), text_array(r['tags']), r['difficulty'],
        NULL if r['estimated_time'] is None else str(r['estimated_time']),
        boolean(r['is_public']), boolean(r['is_featured']), ts(stamp_ms), ts(stamp_ms),
        NULL, NULL]) for r in rows]
    templates = [{'id': r['id'], 'name': r['name'], 'description': r['description'],
                  'nodes': _jsonb_order(r['nodes']), 'edges': _jsonb_order(r['edges']),
                  'variables': _jsonb_order(r['variables']), 'tags': list(r['tags'])}
                 for r in rows]
    return lines, templates


def _credentials():
    from hub import crypto

    value = os.environ.get(crypto.KEY_ENV, '').strip()
    if not value:
        raise ConfigError('%s is not set: the seed file\'s integration credentials are encrypted '
                          'with it; export the key the application will use with the database '
                          '(make one with %s)' % (crypto.KEY_ENV, crypto.MAKE_KEY))
    return crypto.Credentials(value, source='$%s' % crypto.KEY_ENV)


def write(out, orgs=5, scale='small', seed=42, as_of=None, auth_users=False,
          templates_dir=None, progress=None, credentials=None, allow_existing_users=False):
    """Write the seed of these options to `out` (a text stream); returns a SeedResult.

    `auth_users` adds the Supabase Auth users (auth.users, auth.identities) of the seeded
    users and gives users uuid ids, as `hub seed` does on a database with Supabase Auth; the
    file then loads only where that schema and pgcrypto's `extensions.crypt` exist.
    `credentials` (hub.crypto.Credentials) defaults to $HUB_SECRET_KEY. `progress(added, total,
    rows)` as for hub.seed.seed_database. With `auth_users`, the file starts with a check that
    stops it on a database holding users hub did not create (hub.seed.guard), unless
    `allow_existing_users`.
    """
    from hub import marketplace
    from hub.seed import SeedResult, _batches, _utc, auth, parse_options
    from hub.seed.generate import COLUMNS, SCALES, TABLES, Context

    orgs, scale, seed, as_of = parse_options(orgs, scale, seed, as_of)
    credentials = credentials or _credentials()
    rows = marketplace.read_fixtures(templates_dir)  # a bad template fails before any output
    result = SeedResult(seed, scale, orgs, as_of)
    started = time.perf_counter()
    ctx = Context(seed, SCALES[scale], as_of, [], credentials, uuid_users=auth_users)
    stamp = ctx.anchor - 26 * 7 * 86400000  # as hub.seed.seed_database stamps the marketplace
    lines, ctx.templates = marketplace_lines(rows, stamp)
    out.write('-- NeuroFlow Hub seed data, written by `hub seed --sql`: %d organization%s, scale '
              '%s, seed %d, as of %s%s.\n-- Data only: load it into a database built by `hub db '
              'sql` (supabase/seed.sql, or psql -v ON_ERROR_STOP=1 -1 -f FILE).\n'
              '-- Integration credentials are encrypted with the key of id %s (%s).\n\n'
              'SET standard_conforming_strings = on;\nSET client_encoding = \'UTF8\';\n\n'
              % (orgs, '' if orgs == 1 else 's', scale, seed, as_of.isoformat(),
                 ', with Supabase Auth users' if auth_users else '', credentials.kid,
                 credentials.source))
    if auth_users and not allow_existing_users:
        from hub.seed import guard

        out.write('-- seeded accounts sign in with a published password: never into a database '
                  'with real users\n%s\n' % guard.guard_sql())
    out.write('-- the template marketplace (%s)\n' % _utc(stamp).isoformat())
    _inserts(out, 'workflow_templates', MARKETPLACE_COLUMNS, lines)
    result.templates = len(lines)
    if progress is not None:
        progress(0, orgs, 0)
    ids = []
    for batch in _batches(ctx, range(orgs), SEED_BATCH_ROWS):
        out.write('\n-- organizations %d to %d\n' % (result.added + 1, result.added + len(batch)))
        for table in TABLES:
            table_lines = [row for org in batch for row in org.tables[table]]
            if table_lines:
                _inserts(out, table, COLUMNS[table], table_lines)
                result.rows[table] = result.rows.get(table, 0) + len(table_lines)
        if auth_users:  # kept only when needed: memory stays flat in `orgs` otherwise
            ids += [org.id for org in batch]
        result.added += len(batch)
        if progress is not None:
            progress(result.added, orgs, result.total_rows)
    if auth_users:
        out.write('\n-- Supabase Auth users for the seeded users (password %r)\n'
                  % auth.DEV_PASSWORD)
        for statement in auth.add_users_sql(ids, seed):
            out.write(statement + ';\n')
    result.seconds = time.perf_counter() - started
    return result


def write_file(path, **options):
    """`write` into the file `path` (UTF-8), replacing it only once it is complete."""
    tmp = '%s.tmp-%d' % (path, os.getpid())
    try:
        with open(tmp, 'w', encoding='utf-8', newline='\n', buffering=1 << 20) as out:
            result = write(out, **options)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return result
