"""`hub export` / `hub import`: one organization as a JSON document, and back.

    $ hub export --org cq3... -o acme.json
    $ hub import acme.json               # into another database (same ids)
    $ hub import acme.json --as-new      # a copy under fresh ids, beside the original
"""
import time

import click

from hub.cli.output import emit


@click.command('export')
@click.option('--org', 'org_id', required=True, metavar='ID', help='The organization id.')
@click.option('-o', '--output', type=click.Path(dir_okay=False, writable=True),
              help='Write to this file instead of stdout.')
@click.pass_obj
def export_(session, org_id, output):
    """Write one organization (users, memberships, every row under it) as JSON.

    Integration credentials stay encrypted. Example: hub export --org ID -o acme.json
    """
    from hub import snapshot

    started = time.perf_counter()
    doc = snapshot.export_organization(session.db, org_id)
    emit(snapshot.dumps(doc), output)
    _report('exported', sum(len(rows) for rows in doc['tables'].values()), started)


@click.command('import')
@click.argument('file', type=click.File('r'))
@click.option('--as-new', is_flag=True,
              help='Give every row a fresh id, so the copy can sit beside the original.')
@click.pass_obj
def import_(session, file, as_new):
    """Load an organization snapshot made by `hub export`, in one transaction.

    Example: hub import acme.json --as-new
    """
    from hub import snapshot

    started = time.perf_counter()
    doc = snapshot.loads(file.read(), name=file.name)
    org_id, counts = snapshot.import_organization(session.db, doc, as_new=as_new)
    click.echo(org_id)
    _report('imported', sum(counts.values()), started)


def _report(verb, rows, started):
    elapsed = max(time.perf_counter() - started, 1e-9)
    click.echo('%s %d rows in %.2f s (%.0f rows/s)' % (verb, rows, elapsed, rows / elapsed), err=True)


commands = [export_, import_]
