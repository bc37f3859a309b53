"""`hub orgs`, `hub export`, `hub import`: list organizations; one as a JSON document, and back.

    $ hub orgs                                   # id, slug, name, members, workflows
    $ hub export --org acme -o acme.json         # an id or a slug; the file is mode 0600
    $ hub import acme.json                       # into another database (same ids)
    $ hub import acme.json --as-new --link-users --owner ada@acme.example  # a copy beside it

A snapshot is untrusted input: `hub import` checks all of it first and writes nothing on any
problem (docs/snapshots.md has the rules and limits).
"""
import json
import time

import click


@click.command('orgs')
@click.option('--json', 'as_json', is_flag=True, help='Print a JSON array instead of a table.')
@click.pass_obj
def orgs(session, as_json):
    """List the organizations: what `hub export --org` accepts (an id or a slug).

    Example: hub orgs --json
    """
    from hub import snapshot

    rows = snapshot.list_organizations(session.db)
    if as_json:
        for row in rows:
            row['created_at'] = row['created_at'].isoformat()
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo('no organizations; `hub seed` adds some, `hub import FILE` loads one', err=True)
        return
    header = ('id', 'slug', 'name', 'members', 'workflows')
    table = [header] + [tuple(str(row[k]) for k in header) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        click.echo('  '.join(cell.ljust(w) if i < 3 else cell.rjust(w)
                             for i, (cell, w) in enumerate(zip(line, widths))).rstrip())


@click.command('export')
@click.option('--org', required=True, metavar='ID|SLUG',
              help='The organization: its id or its slug (see `hub orgs`).')
@click.option('-o', '--output', type=click.Path(dir_okay=False),
              help='Write to this file (created with mode 0600) instead of stdout.')
@click.pass_obj
def export_(session, org, output):
    """Write one organization (users, memberships, every row under it) as JSON.

    Integration credentials stay encrypted; the file holds e-mails and ciphertext, so it is
    readable by its owner only. Example: hub export --org acme -o acme.json
    """
    from hub import snapshot

    started = time.perf_counter()
    doc = snapshot.export_organization(session.db, org)
    text = snapshot.dumps(doc)
    if output:
        snapshot.write(text, output)
    else:
        click.echo(text, nl=False)
    _report('exported', sum(len(rows) for rows in doc['tables'].values()), started)


@click.command('import')
@click.argument('file', type=click.Path(dir_okay=False, allow_dash=True))
@click.option('--as-new', is_flag=True,
              help='Give every row a fresh id and the slug a free suffix, so the copy can sit '
                   'beside the original.')
@click.option('--link-users', is_flag=True,
              help='Invite users that already exist here (same e-mail, an identity the database '
                   'trusts: on Supabase a confirmed auth.users account) to the imported '
                   'organization (they accept themselves); without it such a user is an error.')
@click.option('--owner', metavar='USER',
              help='Make USER (an id or e-mail of a user of this database, or of the snapshot) '
                   'the imported organization\'s accepted OWNER. Required when no accepted '
                   'OWNER would remain (an OWNER linked by --link-users is only invited).')
@click.pass_obj
def import_(session, file, as_new, link_users, owner):
    """Load an organization snapshot made by `hub export` (FILE, or - for stdin).

    Everything is checked before anything is written, in one transaction; the first problem
    is one line naming the file and the JSON path. The organization keeps an accepted OWNER:
    --owner names who. Example: hub import acme.json --as-new --link-users --owner ada@acme.example
    """
    from hub import snapshot

    started = time.perf_counter()
    name = '<stdin>' if file == '-' else file
    doc = snapshot.read(file, name)
    _ensure_migrated(session.db)
    org_id, counts = snapshot.import_organization(
        session.db, doc, as_new=as_new, link_users=link_users, name=name, owner=owner,
        notify=lambda line: click.echo(line, err=True))
    click.echo(org_id)
    _report('imported', sum(counts.values()), started)


def _ensure_migrated(db):
    """A database without our tables is not the file's fault: say to migrate it first."""
    from hub import models
    from hub.catalog import live_tables
    from hub.errors import MigrationError

    present = set(live_tables(db))
    missing = [m._meta.table_name for m in models.MODELS if m._meta.table_name not in present]
    if missing:
        raise MigrationError('database "%s" is not migrated (no table %s); run `hub db migrate` '
                             'first, then import again' % (db.database, missing[0]))


def _report(verb, rows, started):
    elapsed = max(time.perf_counter() - started, 1e-9)
    click.echo('%s %d rows in %.2f s (%.0f rows/s)' % (verb, rows, elapsed, rows / elapsed), err=True)


commands = [orgs, export_, import_]
