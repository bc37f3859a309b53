"""NeuroFlow Hub data layer: models, migrations, row-level security and a seeder for PostgreSQL.

    $ hub seed                      # an embedded PostgreSQL in ./.hub, migrated and seeded
    $ psql "$(hub db url)"

Kept import-light on purpose: `hub --help` must not pay for Faker or the embedded server.
"""
__version__ = '0.1.0'
