"""Run inside a copy of the project (tests/project.py): `hub db generate` as the library does
it, then migrate, check, revert, check, migrate, check; prints what happened as JSON.

    python tests/autogen_driver.py NAME      # PYTHONPATH=<copy>, DATABASE_URL=<database>
"""
import json
import sys

from hub import autogen, lifecycle, schema
from hub import connection


def dump(database):
    """The catalog: hub.schema.docs (tables, columns, defaults, keys, indexes, checks,
    triggers, enums) and the functions of public."""
    functions = database.execute_sql("""
        SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' ORDER BY 1""").fetchall()
    return [schema.docs(database), [list(f) for f in functions]]


def main(name):
    database = connection.bind(connection.open_database(connection.resolve_url()))
    out = {'before': dump(database)}
    path, warnings = autogen.generate(database, name)
    out.update(path=path and str(path), warnings=warnings,
               source=path.read_text() if path else None)
    if path is None or warnings:
        print(json.dumps(out))
        return
    out['applied'] = lifecycle.migrate_database(database)
    out['check_up'] = schema.check(database)
    out['up'] = dump(database)
    out['reverted'] = lifecycle.rollback(database)
    out['check_down'] = schema.check(database)
    out['down'] = dump(database)
    out['reapplied'] = lifecycle.migrate_database(database)
    out['check_again'] = schema.check(database)
    out['up_again'] = dump(database)
    print(json.dumps(out))


if __name__ == '__main__':
    main(sys.argv[1])
