"""The `hub` command: resolves the database once and turns library errors into one line.

    $ hub db migrate
    $ hub --database-url postgresql://postgres@127.0.0.1:5432/postgres db status
    $ hub db status --database-url postgresql://postgres@127.0.0.1:5432/postgres
    $ DATABASE_URL=postgresql://... hub seed --orgs 5

Command modules import the library inside their functions, so `hub --help` stays fast.
Every command also accepts --database-url after its name (added here, once, to all of them),
and the commands in WRITING refuse a database newer than this code before they write.
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


#: Commands (paths under `hub`; a group covers all of its commands) that write. On first use of
#: the database they refuse one that holds a migration this code lacks (DatabaseNewer), before
#: any question or write, once (hub.migrate.known: the library writers they call skip their
#: own check). This covers every command, including those whose library functions do not
#: check. Add new writing commands.
WRITING = (('db', 'migrate'), ('db', 'rollback'), ('db', 'reset'), ('seed',),
           ('templates', 'load'), ('import',), ('rls', 'install'), ('rls', 'uninstall'),
           ('secrets',))


def writes(path):
    """True when the command at `path` (('db', 'migrate')) is one of WRITING."""
    return any(tuple(path[:len(prefix)]) == prefix for prefix in WRITING)


#: Besides the writing ones, the commands that may start a new embedded server: `hub db url`
#: (psql "$(hub db url)") and `hub shell`. Every other one only reads: run where there is no
#: project, it says where it looked instead of making an empty server.
CREATING = (('db', 'url'), ('shell',))


def creates(path):
    """True when the command at `path` may create the embedded server."""
    return writes(path) or any(tuple(path[:len(prefix)]) == prefix for prefix in CREATING)


class Session:
    """What every command shares: the database, resolved and connected on first use only."""

    def __init__(self, url_option):
        self.url_option = url_option
        self._url = None
        self._db = None
        self._scope = None

    @property
    def url(self):
        if self._url is None:
            from hub import connection
            ctx = click.get_current_context(silent=True)
            path = ctx.command_path.split()[1:] if ctx is not None else ['db', 'url']
            self._url = connection.resolve_url(self.url_option, create=creates(path))
        return self._url

    @property
    def db(self):
        if self._db is None:
            from hub import connection
            database = connection.bind(connection.open_database(self.url))
            ctx = click.get_current_context(silent=True)
            if ctx is not None and writes(ctx.command_path.split()[1:]):
                from hub import migrate
                # Checked here, once, before any question; the library's writers called by
                # the command skip their own check inside this scope (ended by close()).
                scope = migrate.known(database)
                try:
                    scope.__enter__()
                except BaseException:
                    database.close()
                    raise
                self._scope = scope
            self._db = database
        return self._db

    def close(self):
        if self._scope is not None:
            self._scope.__exit__(None, None, None)
            self._scope = None
        if self._db is not None and not self._db.is_closed():
            self._db.close()


def _missing_schema(exc):
    """Whether `exc` is a table or an enum type that is not there (the schema is not migrated).

    By SQLSTATE: 42P01 undefined_table. 42704 undefined_object is shared with missing roles,
    functions and the like, where migrating would not help: only a missing type qualifies.
    """
    from psycopg2 import errors as pgerrors

    cause = pg_error(exc)
    if isinstance(cause, pgerrors.UndefinedTable):
        return True
    return isinstance(cause, pgerrors.UndefinedObject) and str(cause).startswith('type ')


def _read_only(exc):
    """Whether `exc` is a write refused by a read-only database: SQLSTATE 25006, which a hot
    standby (a read replica) raises for every write and lock, and a read-only transaction for
    every write."""
    from psycopg2 import errors as pgerrors

    return isinstance(pg_error(exc), pgerrors.ReadOnlySqlTransaction)


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
            from hub.errors import contention
            what = contention(exc)
            if what is not None:
                raise Failure('another session held locks this command needed (%s: %s); nothing '
                              'of the interrupted transaction was kept; run the command again '
                              'when the other one has finished' % (what, message), 1) from None
            if _missing_schema(exc):
                message += '; run `hub db migrate` first'
            elif _read_only(exc):
                message += ('; this command writes, and the database is read-only (a read '
                            'replica, or default_transaction_read_only): run it on the '
                            "primary's URL")
            raise Failure('database error: %s' % message, 1) from None


URL_HELP = ("PostgreSQL URL. Default: $DATABASE_URL, else the project's embedded server "
            '($HUB_HOME, else the nearest .hub here or above).')


def _store_url(ctx, param, value):
    # Given after a command name: it wins over one given before (the nearer the command).
    if value is not None:
        ctx.find_object(Session).url_option = value


def database_url_option():
    """`--database-url URL` for a command, stored into the Session like `hub --database-url`."""
    return click.Option(['--database-url'], metavar='URL', envvar=None, expose_value=False,
                        callback=_store_url, help=URL_HELP)


@click.group(cls=HubGroup, context_settings={'help_option_names': ['-h', '--help']})
@click.option('--database-url', metavar='URL', envvar=None, help=URL_HELP)
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
            _accept_url(command)
            cli.add_command(command)


def _accept_url(command):
    """Give `command` and every command under it a --database-url option of its own."""
    if not any('--database-url' in p.opts for p in command.params):
        command.params.append(database_url_option())
    for sub in getattr(command, 'commands', {}).values():
        _accept_url(sub)


_register()


_NO_ARGS = getattr(click.exceptions, 'NoArgsIsHelpError', ())  # click >= 8.2


def main(argv=None):
    """Run `hub`; every error ends as one line on stderr and its exit code, never a traceback."""
    try:
        # Without standalone mode click returns the code of an Exit raised by a command.
        code = cli.main(args=argv, prog_name='hub', standalone_mode=False)
    except _NO_ARGS as exc:
        # Bare `hub` or `hub db` asks what there is: the help, on stdout, and success (as docker
        # does, and click before 8.2 did).
        click.echo(exc.ctx.get_help())
        sys.exit(0)
    except click.UsageError as exc:
        # click's own rendering spends three lines (usage, hint, error); keep it to one.
        where = exc.ctx.command_path if exc.ctx is not None else 'hub'
        click.echo('Error: %s (see `%s --help`)' % (exc.format_message(), where), err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        # Ctrl-C: one line and 130 (128 + SIGINT), as shells report it.
        click.echo('interrupted', err=True)
        sys.exit(130)
    except click.Abort:
        click.echo('Aborted.', err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
