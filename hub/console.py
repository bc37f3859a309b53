"""What `hub shell` puts at your fingertips, for any other REPL or notebook too.

    >>> import hub
    >>> from hub import console
    >>> ns = console.namespace(hub.connect())
    >>> ns['Workflow'].select().count()
    0

`identity(db, user_id)` wraps a block in that user's row-level-security identity (the PostgREST
convention: role `authenticated` plus the JWT claims), so a prototype sees what the tenant sees.
"""
import importlib

from hub import models
from hub.errors import ConfigError

# Modules offered by name in the shell, when present.
OPERATION_MODULES = ('workflows', 'agents', 'teams', 'snapshot', 'graph')


def namespace(db):
    ns = {'db': db, 'models': models}
    for name in dir(models):
        value = getattr(models, name)
        if isinstance(value, type) and value.__module__ == models.__name__:
            ns[name] = value
    for name in OPERATION_MODULES:
        try:
            ns[name] = importlib.import_module('hub.%s' % name)
        except ImportError:
            continue
    return ns


def identity(db, user_id):
    """The RLS identity of `user_id` (a context manager); needs `hub rls install`."""
    from hub import rls

    if not db.execute_sql('SELECT 1 FROM users WHERE id = %s', (user_id,)).fetchone():
        raise ConfigError('no user has id %r; pick one with '
                          '`psql "$(hub db url)" -c "SELECT id, email FROM users LIMIT 5"`' % user_id)
    if not rls.installed(db):
        raise ConfigError('row-level security is not installed here; run `hub rls install` first')
    return rls.as_user(db, user_id)
