"""One statement per query: hub.sqltext.statements splits a script as psql reads it, and
hub.migrate.OneByOne sends a migration's text that way on every database (Citus refuses
several statements in one query string during DDL on distributed tables, Citus issue 6608:
"cannot insert multiple commands into a prepared statement"; tests/test_citus.py applies such a
migration there)."""
import pytest

from hub import migrate
from hub.sqltext import split_params, statements

CASES = [
    ('SELECT 1; SELECT 2;', ['SELECT 1', 'SELECT 2']),
    ("SELECT 'a;b'; SELECT E'\\';'; SELECT \"x;y\" FROM t",
     ["SELECT 'a;b'", "SELECT E'\\';'", 'SELECT "x;y" FROM t']),
    ("DO $hub_do$ BEGIN x; y; END $hub_do$;\n-- c;\n/* a; /* b; */ c; */",
     ['DO $hub_do$ BEGIN x; y; END $hub_do$']),
    ('CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; '
     'SELECT CASE WHEN true THEN 1 END; END; SELECT 3',
     ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; '
      'SELECT CASE WHEN true THEN 1 END; END', 'SELECT 3']),
    ('CREATE FUNCTION f() AS $$ a; $$ LANGUAGE sql; BEGIN; COMMIT',
     ['CREATE FUNCTION f() AS $$ a; $$ LANGUAGE sql', 'BEGIN', 'COMMIT']),
    ('-- only a comment;\n', []),
    ('SELECT $1; SELECT a$b; SELECT 2', ['SELECT $1', 'SELECT a$b', 'SELECT 2']),
    ("SELECT $x$ it's; $y$ $x$; SELECT 'it''s;'", ["SELECT $x$ it's; $y$ $x$", "SELECT 'it''s;'"]),
]


@pytest.mark.parametrize('sql, expected', CASES)
def test_statements_split_where_psql_would(sql, expected):
    assert statements(sql) == expected


def test_every_shipped_migration_splits_into_statements_that_rejoin_to_its_text():
    """Nothing of a migration is lost or cut inside a string, a quote or a body."""
    import re

    for m in migrate.runner(migrate._recorder()).migrations():
        module = m.load()
        for part in ('UP', 'DOWN'):
            text = getattr(module, part, None)
            if not isinstance(text, str):
                continue
            pieces = statements(text)
            code = re.sub(r'--[^\n]*', '', text)
            assert re.sub(r'[\s;]', '', ''.join(re.sub(r'--[^\n]*', '', p) for p in pieces)) \
                == re.sub(r'[\s;]', '', code), (m.name, part)


def test_parameters_go_to_the_statement_that_holds_their_placeholder():
    pieces = statements("SELECT %s; SELECT '100%%'; SELECT %s, %s")
    assert split_params(pieces, (1, 2, 3)) == [
        ('SELECT %s', (1,)), ("SELECT '100%%'", ()), ('SELECT %s, %s', (2, 3))]


def test_one_by_one_runs_each_statement_and_answers_with_the_last(database):
    db = migrate.OneByOne(database)
    with database.atomic() as transaction:
        cursor = db.execute_sql("CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (%s), (%s); "
                                "SELECT sum(x), '50%%' FROM t", (20, 22))
        assert cursor.fetchone() == (42, '50%')
        transaction.rollback()
