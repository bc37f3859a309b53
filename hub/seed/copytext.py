r"""Values in PostgreSQL's COPY text format: one line per row, tab-separated, \N for NULL.

    >>> from hub.seed.copytext import line, esc, jsonb, text_array, ts, NULL
    >>> line(['c1', esc('Acme\tCo'), NULL, jsonb({'a': 'x"y'})])
    'c1\tAcme\\tCo\t\\N\t{"a":"x\\\\"y"}\n'
    >>> text_array(['sales', 'crm'])
    '{"sales","crm"}'
    >>> ts(86400000 + 3723004)
    '1970-01-02 01:02:03.004+00'

Escaping is done once per fragment where possible: the seeder pre-renders the static parts of
jsonb values (a log entry without its timestamp, say) and splices per-row numbers into them,
since numbers and timestamps never need escaping.
"""
import datetime
import json

NULL = '\\N'
_EPOCH = datetime.date(1970, 1, 1)
_HOURS = {}


def esc(value):
    """A str as a COPY text field (backslash, tab, newline, carriage return escaped)."""
    if '\\' in value:
        value = value.replace('\\', '\\\\')
    if '\t' in value or '\n' in value or '\r' in value:
        value = value.replace('\t', '\\t').replace('\n', '\\n').replace('\r', '\\r')
    return value


def dumps(obj):
    """Compact JSON text, keys in insertion order (jsonb reorders them anyway)."""
    return json.dumps(obj, separators=(',', ':'), ensure_ascii=False)


def jsonb(obj):
    """A jsonb field."""
    return esc(dumps(obj))


def array_item(text):
    """`text` as one double-quoted element of an array literal, before COPY escaping."""
    return '"' + text.replace('\\', '\\\\').replace('"', '\\"') + '"'


def text_array(items):
    """A text[] field."""
    return esc('{' + ','.join(array_item(item) for item in items) + '}')


def jsonb_array(objs):
    """A jsonb[] field from Python objects."""
    return esc('{' + ','.join(array_item(dumps(obj)) for obj in objs) + '}')


def item_fragment(text):
    """A piece of one jsonb[] element's JSON text, escaped for the array and for COPY.

    Escaping is per character, so fragments escaped apart concatenate to the escaped whole.
    """
    return esc(text.replace('\\', '\\\\').replace('"', '\\"'))


def boolean(value):
    return 't' if value else 'f'


def _prefixes(hour):
    """('YYYY-MM-DD HH:', 'YYYY-MM-DDTHH:') of an hour since the epoch, cached."""
    if len(_HOURS) > 200000:  # a few years of hours: plenty for one seeding window
        _HOURS.clear()
    day = (_EPOCH + datetime.timedelta(hours=hour)).isoformat()
    found = _HOURS[hour] = ('%s %02d:' % (day, hour % 24), '%sT%02d:' % (day, hour % 24))
    return found


def ts(ms):
    """A timestamptz field from epoch milliseconds (UTC, millisecond precision)."""
    hour, rest = divmod(ms, 3600000)
    minutes, rest = divmod(rest, 60000)
    return '%s%02d:%02d.%03d+00' % ((_HOURS.get(hour) or _prefixes(hour))[0], minutes,
                                    rest // 1000, rest % 1000)


def iso(ms):
    """The same instant as ISO 8601 for JSON documents ('2025-01-31T09:15:00.000Z')."""
    hour, rest = divmod(ms, 3600000)
    minutes, rest = divmod(rest, 60000)
    return '%s%02d:%02d.%03dZ' % ((_HOURS.get(hour) or _prefixes(hour))[1], minutes,
                                  rest // 1000, rest % 1000)


def cents(hundredths):
    """A numeric(12,2) field from hundredths of a cent."""
    return '%d.%02d' % divmod(hundredths, 100)


def line(fields):
    return '\t'.join(fields) + '\n'
