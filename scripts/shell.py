"""`hub shell`: a Python prompt with the database connected and the models imported.

    $ hub shell
    $ echo "print(Workflow.select().count())" | hub shell
    $ hub shell --as <users.id>          # inside that user's RLS identity: see what a tenant sees
"""
import code
import contextlib
import sys

import click


@click.command()
@click.option('--as', 'user_id', metavar='USER_ID',
              help="Run inside this user's row-level-security identity (role authenticated).")
@click.pass_obj
def shell(session, user_id):
    """Open a Python prompt with the database, the models and the operations ready.

    IPython is used when installed and the input is a terminal. Example: hub shell --as USER_ID
    """
    from hub import console, db as hubdb

    database = session.db
    namespace = console.namespace(database)
    banner = 'hub shell: %s; models, enums and operations imported; db is the database' % (
        hubdb.where(session.url))
    identity = contextlib.nullcontext()
    if user_id:
        identity = console.identity(database, user_id)
        banner += '; as user %s (row-level security applies)' % user_id
    with identity:
        _interact(namespace, banner)


def _interact(namespace, banner):
    if sys.stdin.isatty():
        try:
            from IPython import start_ipython
        except ImportError:
            pass
        else:
            click.echo(banner, err=True)
            start_ipython(argv=['--no-banner'], user_ns=namespace)
            return
    code.interact(banner=banner, local=namespace, exitmsg='')


commands = [shell]
