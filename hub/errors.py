"""The library's exceptions: one line each, quoting the bad value and saying the fix.

    >>> from hub.errors import HubError, ConfigError
    >>> try:
    ...     raise ConfigError('unknown scale "huge"; use tiny, small, medium or large')
    ... except HubError as exc:
    ...     print(exc.exit_code, exc)
    2 unknown scale "huge"; use tiny, small, medium or large

The command line turns every `HubError` into its message on stderr and `exit_code`.
"""


class HubError(Exception):
    """Something went wrong that the user can act on (exit code 1)."""

    exit_code = 1


class ConfigError(HubError):
    """Bad usage or configuration: a malformed URL, an unknown option value (exit code 2)."""

    exit_code = 2


class DatabaseUnavailable(HubError):
    """The database could not be reached or refused the login."""


class MigrationError(HubError):
    """A migration could not be applied or reverted, or a target is unknown."""


class SchemaDrift(HubError):
    """The live database does not match the models."""


class KeyMismatch(ConfigError):
    """The secret key given is not the one the database's credentials are encrypted with."""


class GraphError(HubError):
    """A workflow graph breaks a rule of `hub.graph`; the message names the path of the bad field."""


class ShellError(HubError):
    """`hub shell --as` cannot keep the tenant's identity or the session's transaction as asked."""


def pg_error(exc):
    """The psycopg2 error behind a peewee one (peewee keeps it as `.orig`), or `exc` itself.

    Its `.pgcode` is the SQLSTATE: '23503' foreign key, '23514' check, '42501' permission.
    """
    original = getattr(exc, 'orig', None)
    return original if isinstance(original, BaseException) else exc
