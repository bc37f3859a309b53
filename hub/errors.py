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


class TemplateIdTaken(HubError):
    """A shipped template's id is held by an organization's row; a load never adopts it."""


class DatabaseNewer(MigrationError):
    """The database holds a migration this version of hub does not have (written by a newer one).

    Every command that writes refuses such a database (hub.migrate.ensure_known): the code
    would write rows in a shape the newer schema may not accept, or revert what it cannot.
    """


class LockConflict(HubError):
    """Another session held the locks this work needed: a deadlock, a lock or statement
    timeout, a canceled statement or a serialization failure. Nothing of the transaction was
    kept; running the command again once the other one has finished succeeds."""


class SchemaDrift(HubError):
    """The live database does not match the models."""


class KeyMismatch(ConfigError):
    """The secret key given is not the one the database's credentials are encrypted with."""


class GraphError(HubError):
    """A workflow graph breaks a rule of `hub.graph`; the message names the path of the bad field."""


class ShellError(HubError):
    """`hub shell --as` cannot keep the tenant's identity or the session's transaction as asked."""


class SnapshotError(HubError):
    """A snapshot that cannot be read or loaded: '<file>: <where>: <problem>'; nothing written."""


class RlsError(HubError):
    """Row-level security cannot be installed or checked as asked."""


class FixtureError(HubError):
    """A template fixture is malformed: '<file>: <json path>: <problem>' on one line."""


class RuleViolation(HubError):
    """An operation would break an invariant (a transition, a team rule, a tenant boundary)."""


def pg_error(exc):
    """The psycopg2 error behind a peewee one (peewee keeps it as `.orig`), or `exc` itself.

    Its `.pgcode` is the SQLSTATE: '23503' foreign key, '23514' check, '42501' permission.
    """
    original = getattr(exc, 'orig', None)
    return original if isinstance(original, BaseException) else exc


#: SQLSTATEs that mean "another session got in the way", not "this SQL is wrong".
CONTENTION = {
    '40P01': 'deadlock detected',
    '55P03': 'lock timeout: a lock was not granted within lock_timeout',
    '57014': 'statement canceled by statement_timeout or pg_cancel_backend',
    '40001': 'serialization failure',
}


def contention(exc):
    """What went wrong when `exc` (peewee or psycopg2) is a lock conflict, else None."""
    return CONTENTION.get(getattr(pg_error(exc), 'pgcode', None))
