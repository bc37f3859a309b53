"""Python values as SQL literals, for the SQL files hub writes without a database.

    >>> from hub.sqltext import literal
    >>> print(literal("O'Brien"), literal(None), literal(True), literal(['a', 'b"c']))
    'O''Brien' NULL true '{"a","b\\"c"}'

Literals are untyped: in `INSERT ... VALUES` PostgreSQL coerces each one to its column's type
(jsonb, enums, arrays, timestamptz). Strings are standard-conforming (`'...'`, quotes doubled,
backslashes literal), as every PostgreSQL since 9.1 reads them by default; the files hub writes
set `standard_conforming_strings = on` all the same.
"""
import datetime
import decimal
import json
import math


class Raw(str):
    """SQL text that `literal` and `interpolate` pass through as it is (an expression)."""


def text(value):
    """A str as a standard-conforming string literal."""
    if '\x00' in value:
        raise ValueError('PostgreSQL text cannot hold NUL characters: %r' % value[:40])
    return "'" + value.replace("'", "''") + "'"


def _array_item(value):
    if value is None:
        return 'NULL'
    if not isinstance(value, str):
        value = value if isinstance(value, (int, float)) else json.dumps(
            value, separators=(',', ':'), ensure_ascii=False)
        value = str(value)
    return '"' + value.replace('\\', '\\\\').replace('"', '\\"') + '"'


def literal(value):
    """`value` (None, bool, int, float, Decimal, str, date/datetime, list, dict) as SQL text.

    A list is an array literal (its items text, or JSON for dicts and lists); a dict is JSON text.
    """
    if value is None:
        return 'NULL'
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else text(repr(value).replace('inf', 'Infinity')
                                                             .replace('nan', 'NaN'))
    if isinstance(value, decimal.Decimal):
        return str(value) if value.is_finite() else text(str(value))
    if isinstance(value, str):
        return text(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return text(value.isoformat(sep=' ') if isinstance(value, datetime.datetime)
                    else value.isoformat())
    if isinstance(value, (list, tuple)):
        return text('{' + ','.join(_array_item(v) for v in value) + '}')
    if isinstance(value, dict):
        return text(json.dumps(value, separators=(',', ':'), ensure_ascii=False))
    raise TypeError('no SQL literal for %s' % type(value).__name__)


def interpolate(sql, params):
    """`sql` with its %s placeholders filled in and %% made %, as peewee's execute_sql has
    psycopg2 do (it passes `params or ()`, and psycopg2 formats even an empty tuple)."""
    return sql % tuple(literal(p) for p in params or ())
