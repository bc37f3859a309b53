"""Curated scenarios: hand-built organizations shipped as snapshots in fixtures/scenarios/.

    >>> import hub
    >>> from hub import scenarios
    >>> scenarios.names()
    ['content-pipeline', 'support-escalation']
    >>> scenarios.load(hub.connect(), 'support-escalation')   # `hub seed --scenario`, minus Auth
    ('c...', {...})

Each file is an organization snapshot (hub.snapshot's format), built with the operations in
hub.workflows, hub.agents and hub.teams by tools/make_scenarios.py, so it keeps every rule the
seeder keeps. Loading one twice adds nothing the second time. On a database with Supabase
Auth, `hub seed --scenario` also gives the users uuid ids and Auth rows (hub.seed.auth);
`load` alone keeps the snapshot's ids.
"""
from importlib import resources
from pathlib import Path

from hub import snapshot
from hub.errors import ConfigError


def scenarios_dir():
    try:
        return Path(str(resources.files('hub.fixtures') / 'scenarios'))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / 'fixtures' / 'scenarios'


def names():
    return sorted(p.stem for p in scenarios_dir().glob('*.json'))


def read(name):
    path = scenarios_dir() / ('%s.json' % name)
    if not path.is_file():
        raise ConfigError('unknown scenario %r; choose one of: %s' % (name, ', '.join(names())))
    return snapshot.loads(path.read_text(), name=path.name)


def load(db, name):
    """Load scenario `name`; returns (organization id, rows per table), or None when present."""
    return load_document(db, read(name))


def load_document(db, doc, user_id=None):
    """Load a scenario already read with `read`; None when its organization is present.

    `user_id(snapshot user id) -> id` renames the scenario's users first (`hub seed` gives them
    uuids on a database with Supabase Auth); every reference to them follows (the snapshot's
    own id mapping, by foreign key).
    """
    if db.execute_sql('SELECT 1 FROM organizations WHERE id = %s',
                      (doc['organization_id'],)).fetchone():
        return None
    return snapshot.import_organization(db, doc, user_id=user_id)
