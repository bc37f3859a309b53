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
import re


_PLAIN = re.compile(r'[a-z_][a-z0-9_]*')
#: Words PostgreSQL reserves (a column named so must be quoted); the ones a model may use.
_RESERVED = set('''all analyse analyze and any array as asc asymmetric both case cast check
    collate column constraint create current_date current_time current_timestamp current_user
    default deferrable desc distinct do else end except false fetch for foreign from grant group
    having in initially intersect into lateral leading limit localtime localtimestamp not null
    offset on only or order placing primary references returning select session_user some
    symmetric table then to trailing true union unique user using variadic when where window
    with'''.split())


def identifier(name):
    """An identifier as SQL: plain when it can be, double-quoted otherwise."""
    if _PLAIN.fullmatch(name) and name not in _RESERVED:
        return name
    return '"%s"' % name.replace('"', '""')


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


# -- one statement per query ------------------------------------------------------------------

#: What can hide a semicolon: quoted identifiers, strings (E'' with backslash escapes), dollar
#: quotes, comments (/* */ nest in PostgreSQL); and the words that open and close a BEGIN ATOMIC
#: body or a CASE in an SQL-standard function body.
_TOKEN = re.compile(r"""
      (?P<semicolon>;)
    | (?P<line>--[^\n]*)
    | (?P<block>/\*)
    | (?P<dollar>\$(?:[A-Za-z_\x80-\uffff][\w\x80-\uffff]*)?\$)
    | (?P<escape>[Ee]'(?:[^'\\]|\\.|'')*'?)
    | (?P<string>'(?:[^']|'')*'?)
    | (?P<ident>"(?:[^"]|"")*"?)
    | (?P<word>[A-Za-z_\x80-\uffff][\w$\x80-\uffff]*)
    | (?P<param>\$\d+)
    """, re.X | re.S)
_ROUTINE = re.compile(r'\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE)\b', re.I)


def _comment_end(sql, start):
    """The index just after the /* comment opening at `start` (nested ones included)."""
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith('/*', i):
            depth, i = depth + 1, i + 2
        elif sql.startswith('*/', i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def statements(sql):
    """`sql` cut into its statements, each as written (comments kept) without the semicolon
    that ends it; blank or comment-only pieces are left out.

        >>> statements("SELECT ';'; DO $x$ BEGIN NULL; END $x$;\\n-- done\\n")
        ["SELECT ';'", 'DO $x$ BEGIN NULL; END $x$']

    A semicolon inside a string, a quoted identifier, a dollar quote, a comment, or the body of
    a CREATE FUNCTION/PROCEDURE ... BEGIN ATOMIC ... END does not end a statement (as psql
    reads a script).
    """
    out, start, i, depth = [], 0, 0, 0
    routine = None
    while True:
        match = _TOKEN.search(sql, i)
        if match is None:
            break
        kind, i = match.lastgroup, match.end()
        if kind == 'block':
            i = _comment_end(sql, match.start())
        elif kind == 'dollar':
            close = sql.find(match.group(), i)
            i = len(sql) if close < 0 else close + len(match.group())
        elif kind == 'word':
            if routine is None:
                routine = bool(_ROUTINE.match(sql, start))
            if routine:
                word = match.group().upper()
                if word in ('BEGIN', 'CASE'):
                    depth += 1
                elif word == 'END' and depth:
                    depth -= 1
        elif kind == 'semicolon' and not depth:
            out.append(sql[start:match.start()])
            start, routine = i, None
    out.append(sql[start:])
    return [s.strip() for s in out if _has_code(s)]


def _has_code(piece):
    """Whether `piece` holds more than blanks and comments."""
    i = 0
    while True:
        match = _TOKEN.search(piece, i)
        if match is None:
            return bool(piece[i:].strip())
        if piece[i:match.start()].strip():
            return True
        kind = match.lastgroup
        if kind == 'line':
            i = match.end()
        elif kind == 'block':
            i = _comment_end(piece, match.start())
        else:
            return True


_PLACEHOLDER = re.compile(r'%(?:%|s|\([^)]*\)s)')


def split_params(pieces, params):
    """[(piece, its params)]: `params` (a sequence, for %s placeholders) dealt out to the
    pieces of one query text in order, as psycopg2 would have read them in the whole text."""
    if not params:
        return [(piece, params) for piece in pieces]
    out, used = [], 0
    for piece in pieces:
        count = sum(1 for p in _PLACEHOLDER.findall(piece) if p == '%s')
        out.append((piece, tuple(params[used:used + count])))
        used += count
    return out
