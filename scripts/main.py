"""The `hub` command: resolves the database once and turns library errors into one line.

    $ hub db migrate
    $ hub --database-url postgresql://postgres@127.0.0.1:5432/postgres db status
    $ DATABASE_URL=postgresql://... hub seed --orgs 5

Command modules import the library inside their functions, so `hub --help` stays fast.
"""
import importlib
import logging
import sys

import click

from hub.errors import HubError, pg_error


class Failure(click.ClickException):
    """A one-line error with the library's exit code (1 failure, 2 usage or configuration)."""

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


class Session:
    """What every command shares: the database, resolved and connected on first use only."""

    def __init__(self, url_option):
        self.url_option = url_option
        self._url = None
        self._db = None

    @property
    def url(self):
        if self._url is None:
            from hub import db
            self._url = db.resolve_url(self.url_option)
        return self._url

    @property
    def db(self):
        if self._db is None:
            from hub import db
            self._db = db.bind(db.open_database(self.url))
        return self._db

    def close(self):
        if self._db is not None and not self._db.is_closed():
            self._db.close()


def _database_error_message(exc):
    """The first line of a PostgreSQL error, or None when `exc` is not one."""
    from peewee import DatabaseError, InterfaceError
    import psycopg2

    if isinstance(exc, (DatabaseError, InterfaceError, psycopg2.Error)):
        cause = pg_error(exc)
        text = str(cause).strip() or type(cause).__name__
        return text.splitlines()[0]
    return None


class HubGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except HubError as exc:
            raise Failure(str(exc), exc.exit_code) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            message = _database_error_message(exc)
            if message is None:
                raise
            if 'does not exist' in message and ('relation' in message or 'type' in message):
                message += '; run `hub db migrate` first'
            raise Failure('database error: %s' % message, 1) from None


@click.group(cls=HubGroup, context_settings={'help_option_names': ['-h', '--help']})
@click.option('--database-url', metavar='URL', envvar=None,
              help='PostgreSQL URL. Default: $DATABASE_URL, else the embedded server in ./.hub.')
@click.option('-v', '--verbose', is_flag=True, help='Log every SQL statement (the peewee logger).')
@click.version_option(package_name='neuroflow-hub', prog_name='hub')
@click.pass_context
def cli(ctx, database_url, verbose):
    """NeuroFlow Hub data layer: schema, row-level security and seed data for PostgreSQL."""
    if verbose:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter('%(name)s: %(message)s'))
        logger = logging.getLogger('peewee')
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    session = Session(database_url)
    ctx.obj = session
    ctx.call_on_close(session.close)


def _register():
    # Each module defines `commands`; they import the library lazily, inside the commands.
    for name in ('db', 'rls', 'seed', 'templates', 'snapshot', 'shell', 'secrets'):
        for command in importlib.import_module('hub.cli.%s' % name).commands:
            cli.add_command(command)


_register()


def main(argv=None):
    """Run `hub`; every error ends as one line on stderr and its exit code, never a traceback."""
    try:
        # Without standalone mode click returns the code of an Exit raised by a command.
        code = cli.main(args=argv, prog_name='hub', standalone_mode=False)
    except click.UsageError as exc:
        # click's own rendering spends three lines (usage, hint, error); keep it to one.
        where = exc.ctx.command_path if exc.ctx is not None else 'hub'
        click.echo('Error: %s (see `%s --help`)' % (exc.format_message(), where), err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo('Aborted.', err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
