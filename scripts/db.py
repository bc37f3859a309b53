"""`hub db ...`: where the database is, its migrations, its documentation and its drift.

    $ hub db migrate              # apply what is pending
    $ hub db status               # exit 1 while something is pending or unknown to this code
    $ hub db rollback --all -y    # asks first when tables holding rows would be dropped
    $ hub db reset -y --seed      # empty, migrated, secured, then seeded again
    $ hub db check                # models vs live database, exit 1 on any difference
    $ hub db docs -o docs/schema.md
    $ hub db prisma -o prisma/schema.prisma
    $ hub db sql -o supabase/migrations   # one file per transaction
    $ hub db psql                 # psql on it, the embedded server's own (PostgreSQL 18)
    $ hub db dump -o backups/hub.sql
    $ psql "$(hub db url)"
"""
import json
import os

import click

from hub.cli.output import check_output, confirm, emit, make_folders, yes_option


@click.group()
def db():
    """Database location, migrations, documentation and drift."""


@db.command()
@click.pass_obj
def url(session):
    """Print the database URL in use (starts the embedded server if it is the default).

    The URL is checked first: a malformed one is a one-line error with exit code 2.
    Example: psql "$(hub db url)"
    """
    click.echo(session.url)


_PASS_THROUGH = dict(ignore_unknown_options=True, allow_interspersed_args=False)


@db.command(context_settings=_PASS_THROUGH)
@click.argument('args', nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def psql(ctx, args):
    """Open psql on the database in use (ARGS go to psql), with the embedded server's own psql.

    That psql (PostgreSQL 18) talks to the embedded server and to older ones; its exit code is
    this command's.
    Example: hub db psql -c 'select count(*) from workflows'
    """
    ctx.exit(_run_client('psql', ctx.obj.url, list(args)))


@db.command(context_settings=_PASS_THROUGH)
@click.option('-o', '--output', type=click.Path(dir_okay=False, writable=True),
              help='Write the dump to this file (folders are made) instead of stdout.')
@click.argument('args', nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def dump(ctx, output, args):
    """Dump the database in use with pg_dump (ARGS go to pg_dump), the embedded server's own.

    That pg_dump (PostgreSQL 18) dumps the embedded server and older ones: the machine's
    pg_dump refuses a newer server.
    Example: hub db dump -o backups/hub.sql

    Example: hub db dump --data-only --table workflows
    """
    extra = list(args)
    if output:
        check_output(output)
        make_folders(output)
        _private_file(output)
        extra = ['--file', output] + extra
    code = _run_client('pg_dump', ctx.obj.url, extra)
    if code == 0 and output:
        click.echo('wrote %s' % output, err=True)
    ctx.exit(code)


def _private_file(path):
    """Create (or narrow) `path` with mode 0600 before pg_dump writes it: a dump holds every
    e-mail and ciphertext, as a snapshot does (hub export writes 0600 too)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    except OSError as exc:
        raise click.BadParameter('cannot write %s: %s' % (path, exc.strerror),
                                 param_hint='-o') from None


def _run_client(name, url, args):
    """Run the bundled client `name` on `url`; Ctrl-C is the client's to handle (psql cancels
    the running query and carries on), so this process ignores it meanwhile."""
    import signal
    import subprocess

    from hub import connection

    program = connection.client(name)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.call([str(program), '--dbname', url, *args],
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    finally:
        signal.signal(signal.SIGINT, previous)


@db.command()
def stop():
    """Stop the embedded PostgreSQL of this project (the .hub found from here, or $HUB_HOME).

    Example: cd docs && hub db stop      # stops the server of the project's .hub above
    """
    from hub import connection

    home = connection.hub_home()
    if connection.stop_embedded():
        click.echo('stopped the embedded PostgreSQL in %s' % home, err=True)
    elif home.exists():
        click.echo('the embedded PostgreSQL in %s is not running' % home, err=True)
    elif os.environ.get('HUB_HOME'):
        click.echo('no embedded PostgreSQL in %s (HUB_HOME)' % home, err=True)
    else:  # nothing found from here up: hub_home() is ./.hub, not created
        click.echo('no embedded PostgreSQL in %s or the folders above it' % home.parent, err=True)


#: `hub db migrate --sql` with nothing pending: nothing written, said on stderr.
NOTHING_PENDING = 3


@db.command()
@click.argument('target', required=False)
@click.option('--sql', 'as_sql', is_flag=True,
              help='Write the SQL of the pending migrations (each followed by the '
                   'row-level-security sync and its history row) instead of running it: one '
                   'file per transaction into the folder -o, or stdout when it is one file. '
                   'Exit 3, nothing written, when nothing is pending.')
@click.option('-o', '--output', type=click.Path(file_okay=False),
              help='With --sql: the folder the files go to (made when missing), named '
                   '<timestamp>_hub_<migration>.sql after what each holds (e.g. '
                   'supabase/migrations).')
@click.option('--fake', is_flag=True,
              help='Record the pending migrations (up to TARGET) as applied without running '
                   'them: adopts a database whose schema already matches hub.models; refused '
                   'when `hub db check` finds a difference.')
@click.option('--lock-timeout', metavar='DURATION',
              help='Longest wait for a lock in each migration (SET LOCAL lock_timeout; e.g. 2s, '
                   '500ms); then it is rolled back and retried. Default: $HUB_MIGRATE_LOCK_TIMEOUT '
                   'or 2s. With --sql, the SET the file starts with.')
@click.option('--statement-timeout', metavar='DURATION',
              help='Longest run of any one statement of a migration (e.g. 10min; 0: none). '
                   'Default: $HUB_MIGRATE_STATEMENT_TIMEOUT or 10min.')
@click.option('--retries', type=int, metavar='N',
              help='Retries, with backoff, of a migration that hit the lock timeout, before '
                   'failing with the blocking session named. Default: $HUB_MIGRATE_RETRIES or 5.')
@click.pass_obj
def migrate(session, target, as_sql, output, fake, lock_timeout, statement_timeout, retries):
    """Apply pending migrations, up to and including TARGET (a name like 0001_initial, or 1).

    Each migration ends, in its transaction, with the row-level-security sync: a table it
    creates is never committed reachable beyond its model (docs/migrations.md). With --sql,
    write what would run instead, one file per transaction (a migration's enum labels are
    committed in a file before the one that uses them), for psql -1 or supabase/migrations/;
    a later `hub db status` on a database where they were applied shows the migrations as
    applied. With --fake, record them as applied without running them (a database whose
    schema already matches, built by hand or restored).

    Example: hub db migrate

    Example: hub db migrate --sql -o supabase/migrations && supabase migration up

    Example: hub db migrate --sql 0006 | psql -v ON_ERROR_STOP=1 -1 -d "$DATABASE_URL"

    Example: hub db migrate --fake 0005

    Example: hub db migrate --lock-timeout 1s --retries 10

    Each migration waits at most --lock-timeout for a lock (readers of that table queue behind
    it meanwhile), is rolled back and retried with backoff, and after --retries fails naming the
    session that holds the lock (pid, role, query, how long).
    """
    from hub import lifecycle
    from hub import migrate as migrations

    if as_sql and fake:
        raise click.UsageError('give --sql or --fake, not both')
    if output and not as_sql:
        raise click.UsageError('-o is the folder of --sql; give --sql -o %s' % output)
    if output:
        check_folder(output)
    bounds = migrations.Bounds(lock_timeout, statement_timeout, retries)
    if fake:
        recorded = lifecycle.adopt(session.db, target)
        for name in recorded:
            click.echo('recorded %s (not run)' % name)
        if not recorded:
            click.echo('nothing to record: every migration is applied', err=True)
        return
    if as_sql:
        plan = lifecycle.pending_transactions(session.db, target)
        if not plan:
            click.echo('nothing pending: the database is up to date; no SQL written', err=True)
            raise click.exceptions.Exit(NOTHING_PENDING)
        names = [s.heading.split()[1] for t in plan for s in t.steps
                 if s.heading.startswith('migration ') and not s.commit]
        write_sql(plan, output, lambda i: migrations.bounds_header(bounds),
                  'hub db migrate --sql -o supabase/migrations')
        click.echo('-- %d pending migration%s: %s' % (len(names), '' if len(names) == 1 else 's',
                                                  ', '.join(names)), err=True)
        return
    applied = lifecycle.migrate_database(session.db, target, bounds=bounds,
                                         notify=lambda line: click.echo(line, err=True))
    for name in applied:
        click.echo('applied %s' % name)
    if not applied:
        click.echo('nothing to apply: the database is up to date', err=True)
    for name, path in migrations.edited(session.db):
        click.echo('warning: %s' % migrations.edited_message(name, path), err=True)
    _audit_warnings(session.db)


def _audit_warnings(db):
    """Each violation of the catalog audit (hub.audit) on stderr, after every migrate."""
    from hub import rls

    for violation in rls.violations(db):
        click.echo('warning: %s' % (violation,), err=True)


def check_folder(output):
    """Fail early (usage error) when the folder -o cannot be written (a missing one is made)."""
    if os.path.lexists(output) and not os.path.isdir(output):
        raise click.BadParameter('cannot write into %s: not a folder; give the folder the files '
                                 'go to (e.g. supabase/migrations)' % output, param_hint='-o')
    if os.path.isdir(output) and not os.access(output, os.W_OK):
        raise click.BadParameter('cannot write into %s: folder not writable' % output,
                                 param_hint='-o')
    check_output(output)


def write_sql(plan, output, header, fix, folder=True):
    """The Transactions `plan` as SQL: one file each into the folder `output` (made when
    missing), or, with no folder (stdout, or the file `output` when not `folder`), one text
    when the plan is one transaction; refused otherwise (usage error naming `fix`). header(i)
    opens file i."""
    from hub import migrate as migrations

    if output and folder:
        texts = [(t.name, migrations.file_text(t, header(i))) for i, t in enumerate(plan)]
        try:
            os.makedirs(output, exist_ok=True)
            paths = migrations.write_files(output, texts)
        except OSError as exc:
            raise click.BadParameter('cannot write into %s: %s' % (output, exc.strerror),
                                     param_hint='-o') from None
        for path in paths:
            click.echo('wrote %s' % path, err=True)
        return
    why = migrations.needs_files(plan)
    if why:
        raise click.UsageError('cannot write one file: %s; give a folder: %s' % (why, fix))
    emit(migrations.file_text(plan[0], header(0)), output)
    if output:
        click.echo('wrote %s' % output, err=True)


@db.command()
@click.argument('name')
def new(name):
    """Write the next numbered migration, hub/migrations/NNNN_NAME.py, to fill in by hand.

    NAME is snake_case (lowercase letters, digits, underscores). The file's UP and DOWN SQL
    are comments to replace (applying it fails until they are written); its path is printed.
    To write the SQL from the models instead, use `hub db generate NAME`.
    Example: hub db new backfill_workflow_priority
    """
    from hub import migrate as migrations

    path = migrations.new(name)
    click.echo(str(path))
    click.echo('wrote %s: write its UP and DOWN SQL, then run `hub db migrate`' % path.name,
               err=True)


@db.command()
@click.argument('name')
@click.pass_obj
def generate(session, name):
    """Write the next numbered migration, NNNN_NAME.py, that brings the database to hub.models.

    Compares the models with the live database (what `hub db check` lists) and writes frozen
    SQL: UP brings the database to the models, DOWN reverses it. What it cannot write without
    guessing (a rename, a removed enum label, a narrowed type) becomes a TODO in the file and
    a warning on stderr. No difference: says so, writes nothing, exit 0. Run it on a database
    with every migration applied; read the file, then `hub db migrate` and `hub rls install`.
    Example: hub db generate add_workflow_priority
    """
    from hub import autogen, schema

    path, warnings = autogen.generate(session.db, name)
    if path is None:
        click.echo('no differences: the database matches hub.models; nothing written', err=True)
        if schema.check(session.db):  # what is left are policies: not a migration's
            click.echo('the row-level-security policies differ from hub.rls: run `hub rls '
                       'install`', err=True)
        return
    click.echo(str(path))
    for warning in warnings:
        click.echo('warning: %s' % warning, err=True)
    click.echo('wrote %s: read it, then run `hub db migrate`' % path.name, err=True)


@db.command()
@click.option('--json', 'as_json', is_flag=True, help='Print the list as JSON.')
@click.pass_obj
def status(session, as_json):
    """List migrations, applied and pending; exit 1 when something is pending, when the
    database holds a migration this version of hub does not have, or when an applied
    migration's file was edited after it was applied (its recorded checksum differs).

    Times are when each migration was applied (in --json with their UTC offset).
    Example: hub db status --json
    """
    from hub import migrate as migrations

    rows = migrations.status(session.db)
    edited = dict(migrations.edited(session.db))
    if as_json:
        click.echo(json.dumps([{'name': m.name, 'applied': _aware(m.applied).isoformat()
                                if m.applied else None, 'file': m.path is not None,
                                'edited': m.name in edited}
                               for m in rows], indent=2))
    else:
        for m in rows:
            state = 'applied %s' % m.applied.strftime('%Y-%m-%d %H:%M:%S') if m.applied else 'pending'
            if m.path is None:
                state += ' (file missing)'
            if m.name in edited:
                state += ' (edited since)'
            click.echo('%s  %s' % (m.name.ljust(32), state))
    unknown = migrations.unknown(rows)
    if unknown:
        click.echo(migrations.newer_message(unknown), err=True)
        raise click.exceptions.Exit(1)
    for name, path in edited.items():
        click.echo(migrations.edited_message(name, path), err=True)
    pending = [m.name for m in rows if m.applied is None]
    if pending:
        click.echo('%d pending: run `hub db migrate`' % len(pending), err=True)
    if pending or edited:
        raise click.exceptions.Exit(1)


def _aware(applied):
    # The history stores the local time of the process that applied the migration, without a
    # zone (playhouse's Runner uses datetime.now()): read it as this machine's local time.
    return applied if applied.tzinfo else applied.astimezone()


@db.command()
@click.argument('target', required=False)
@click.option('--all', 'everything', is_flag=True, help='Revert every applied migration.')
@yes_option('Do not ask, even when tables holding rows would be dropped.')
@click.pass_obj
def rollback(session, target, everything, yes):
    """Revert the latest migration, or every migration back through TARGET, or --all.

    Asks first (on stderr) when tables holding rows would be dropped, naming them; --yes
    skips the question. Reverting every migration also removes row-level security (policies,
    helpers, the auth stand-in). Example: hub db rollback --all --yes
    """
    from hub import connection
    from hub import lifecycle

    if target and everything:
        raise click.UsageError('give a TARGET or --all, not both')
    if not yes:
        plan = lifecycle.plan_rollback(session.db, target, all=everything)
        if plan.rows:
            confirm('reverting %s drops %s in %s; continue?' % (
                ', '.join(plan.names), _losses(plan), connection.redact(session.url)))
    for name in lifecycle.rollback(session.db, target, all=everything):
        click.echo('reverted %s' % name)


def _losses(plan):
    """'12 tables holding 2,345 rows (users 64, organizations 3, and 10 more)'."""
    full = sorted((name for name, rows in plan.dropped.items() if rows),
                  key=lambda name: -plan.dropped[name])
    listed = ['%s %s' % (name, '{:,}'.format(plan.dropped[name])) for name in full[:4]]
    if len(plan.dropped) > len(listed):
        listed.append('%d more' % (len(plan.dropped) - len(listed)))
    count = len(plan.dropped)
    return '%d table%s holding %s rows (%s)' % (count, '' if count == 1 else 's',
                                                 '{:,}'.format(plan.rows), ', '.join(listed))


@db.command()
@yes_option()
@click.option('--seed', 'reseed', is_flag=True,
              help='Seed again afterwards, with the defaults of `hub seed`.')
@click.pass_obj
def reset(session, yes, reseed):
    """Drop every table, type and policy of ours, migrate again and install row-level security.

    The result is what `hub seed` starts from (the marketplace and the organizations are
    loaded by `hub seed`); with --seed it runs too, as `hub seed` with its defaults would.
    Asks first on stderr; --yes skips the question. Example: hub db reset -y --seed
    """
    from hub import crypto, lifecycle
    from hub import connection
    from hub import seed as seeder

    db = session.db
    if reseed:
        crypto.key_for(db)  # a seed that cannot encrypt must fail before anything is dropped
    if not yes:
        confirm('drop all NeuroFlow Hub data in %s?' % connection.redact(session.url))
    from hub import rls as hubrls

    mode = hubrls.installed_mode(db)  # reinstalled as it was (hub rls install --mode)
    for name in lifecycle.reset(db):
        click.echo('applied %s' % name)
    lifecycle.prepare(db, _note, mode=mode)
    if reseed:
        result = seeder.seed_database(db, notify=_note)
        click.echo('seeded %d organizations (%s rows, seed %d)'
                   % (result.added, '{:,}'.format(result.total_rows), result.seed))
    else:
        _note('the database is empty, migrated and secured; next: `hub seed`')


def _note(message):
    click.echo(message, err=True)


@db.command()
@click.option('-o', '--output', type=click.Path(dir_okay=False, writable=True),
              help='Write to this file instead of stdout (e.g. docs/schema.md).')
@click.pass_obj
def docs(session, output):
    """Write Markdown documentation of the live schema, with a Mermaid ER diagram.

    Refuses (exit 1) a database that is not migrated, writing nothing.
    Example: hub db docs -o docs/schema.md
    """
    from hub import schema

    if output:
        check_output(output)
    emit(schema.docs(session.db), output)
    if output:
        click.echo('wrote %s' % output, err=True)


@db.command()
@click.pass_obj
def check(session):
    """Compare the models with the live database; list each difference, exit 1 if any."""
    from hub import schema

    diffs = schema.check(session.db)
    for line in diffs:
        click.echo(line)
    if diffs:
        click.echo('%d difference(s) between hub.models and the database' % len(diffs), err=True)
        raise click.exceptions.Exit(1)
    click.echo('no differences: the database matches hub.models', err=True)


@db.command()
@click.pass_obj
def distribute(session):
    """On a Citus coordinator: distribute the tenant tables, make the others reference tables.

    `hub db migrate` does this at the end of every migration on a database with Citus; run it
    for a database that got Citus after it was migrated. Tenant tables (a NOT NULL
    organization_id) are distributed by organization_id and colocated, their keys gaining
    organization_id; every other table of public becomes a reference table (docs/citus.md).
    Prints one line per change; nothing when all is in place (it can run again). Refuses a
    database without the citus extension (exit 2).
    Example: hub db distribute
    """
    from hub import citus

    done = citus.distribute_database(session.db)
    for line in done:
        click.echo(line)
    click.echo('distributed: %d change(s)' % len(done) if done else
               'nothing to distribute: every table is already as hub places it on Citus',
               err=True)


@db.command('sql')
@click.option('-o', '--output', type=click.Path(writable=True),
              help='A folder (e.g. supabase/migrations; made when missing): one file per '
                   'transaction, named <timestamp>_hub_<migration>.sql; or a file ending in .sql, '
                   'when the schema is one transaction. Default: stdout (one transaction only).')
@click.option('--mode', type=click.Choice(['members', 'active']), default='members',
              show_default=True,
              help='The row-level security mode to install, as `hub rls install --mode`.')
def schema_sql(output, mode):
    """Write the whole schema as SQL: every migration, then row-level security.

    Needs no database. Roles and the `auth` stand-ins are created only where missing, so the
    files apply to an empty database on plain PostgreSQL and on Supabase, and record the
    migration history: `hub db status`, `hub db check` and `hub rls status` are clean after
    them. One file per transaction: a migration that adds enum labels ends one, so the labels
    are committed before a later file uses them. No psql meta-commands, no COPY, no
    BEGIN/COMMIT: apply each file in order with psql -1, or keep them in supabase/migrations/.

    Example: hub db sql -o supabase/migrations

    Example: for f in schema/*.sql; do psql -v ON_ERROR_STOP=1 -1 -d "$DATABASE_URL" -f "$f"; done

    Example: hub db sql --mode active -o supabase/migrations
    """
    from hub import lifecycle

    folder = bool(output) and (os.path.isdir(output) or not output.endswith('.sql'))
    if folder:
        check_folder(output)
    elif output:
        check_output(output)
    plan = lifecycle.schema_transactions(mode=mode)
    write_sql(plan, output, lambda i: lifecycle.schema_header(plan, i),
              'hub db sql -o supabase/migrations', folder)


@db.command('prisma')
@click.option('-o', '--output', type=click.Path(dir_okay=False, writable=True),
              help='Write to this file instead of stdout (e.g. prisma/schema.prisma).')
@click.option('--ids', type=click.Choice(['database', 'cuid']), default='database',
              show_default=True,
              help='database: ids come from the database default (Prisma\'s diff stays empty); '
                   'cuid: Prisma Client makes them (@default(cuid())).')
@click.pass_obj
def prisma_schema(session, output, ids):
    """Write a schema.prisma for Prisma Client, generated from the models and the migrated database.

    Models, relations and enums carry the platform's names (AIAgent, creator, "WorkflowCreator").
    Prisma only reads the database: never run `prisma migrate dev` or `prisma db push` on it.
    Exit 1 when the database differs from the models (run `hub db migrate`, `hub db check`).
    Example: hub db prisma -o prisma/schema.prisma && npx prisma generate
    """
    from hub import prisma

    if output:
        check_output(output)
    emit(prisma.schema(session.db, ids=ids), output)
    if output:
        click.echo('wrote %s' % output, err=True)


commands = [db]
