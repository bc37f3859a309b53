"""`hub templates ...`: the marketplace of system workflow templates (fixtures/templates/*.json).

    $ hub templates load                      # validate every file, then upsert them all
    $ hub templates list --category sales
    $ hub templates list --json | jq '.[].name'
    $ hub templates validate --dir ./my-templates   # check files without a database
    $ hub templates show proposal-generator --svg proposal.svg
"""
import json

import click

_DIR = click.option('--dir', 'directory', metavar='PATH',
                    help='Folder of *.json templates. Default: the shipped marketplace.')


@click.group()
def templates():
    """Marketplace workflow templates: validate, load, list, show."""


@templates.command()
@_DIR
@click.pass_obj
def load(session, directory):
    """Validate every template, then upsert all of them as system templates (idempotent).

    Nothing is written when any file is malformed. A reload updates changed templates in place
    and keeps their usage_count and rating.
    """
    from hub import marketplace

    counts = marketplace.sync(session.db, directory)
    click.echo('%(total)d templates: %(inserted)d new, %(updated)d updated, %(unchanged)d unchanged'
               % counts)


@templates.command()
@_DIR
def validate(directory):
    """Check every template file (schema, graph, references) without touching a database."""
    from hub import marketplace

    rows = marketplace.read_fixtures(directory)
    click.echo('%d templates are valid' % len(rows))


@templates.command(name='list')
@click.option('--category', metavar='NAME',
              help='Only this category: sales, support, marketing, data_processing, automation, '
                   'analytics, content or communication.')
@click.option('--json', 'as_json', is_flag=True, help='Print every column as JSON (graphs included).')
@click.pass_obj
def list_(session, category, as_json):
    """List the public templates, featured first within each category.

    "used N": the workflows made from it (seeded ones included), or its usage_count if higher
    (instantiations whose workflow was deleted since).
    """
    from hub import marketplace

    if category is not None:
        # Checked before connecting: a typo should not wait for the database.
        category = marketplace.parse_category(category)
    rows = marketplace.list_templates(session.db, category)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False, default=_json_default))
        return
    if not rows:
        click.echo('no templates%s: run `hub templates load`'
                   % (' in %s' % category if category else ''), err=True)
        return
    width = max(len(row['name']) for row in rows)
    for row in rows:
        click.echo('%-15s %s %-*s %-12s %4s min  used %s' % (
            row['category'], '*' if row['is_featured'] else ' ', width, row['name'],
            row['difficulty'], row['estimated_time'] if row['estimated_time'] is not None else '-',
            max(row['usage_count'], row['workflows'])))
    click.echo('%d templates (* featured)' % len(rows), err=True)


@templates.command()
@click.argument('name')
@_DIR
@click.option('--svg', 'svg_file', metavar='FILE', type=click.Path(dir_okay=False, writable=True),
              help='Also write the template\'s picture (SVG, from its stored positions) to FILE.')
def show(name, directory, svg_file):
    """Print one template's summary: facts, variables and its nodes in execution order.

    NAME is a file stem or a template name, in any case. No database is needed. An unknown
    NAME exits 2 with the close matches.

    \b
    Example:
        hub templates show "sales proposal generator" --svg proposal.svg
    """
    from hub import gallery

    row = gallery.find(name, directory)
    if svg_file:  # first, so a bad path fails before anything is printed
        gallery.write_picture(row, svg_file)
    click.echo(gallery.summary(row))
    if svg_file:
        click.echo('wrote %s' % svg_file, err=True)


def _json_default(value):
    if hasattr(value, 'isoformat'):
        return value.isoformat()
    raise TypeError('cannot serialise %r' % type(value).__name__)


commands = [templates]
