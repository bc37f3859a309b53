"""The generator without a database (ids, streams, graphs, pools) and COPY escaping through one."""
import datetime
import io
import random
import subprocess
import sys

import pytest

from hub import graph
from hub.ids import new_id
from hub.seed import copytext, graphs
from hub.seed.generate import (SCALES, SLUG_SUFFIX_SPACE, Context, fast_id_factory, generate_org,
                               slug_keys, slug_suffix)

AS_OF = datetime.date(2025, 1, 31)


def test_fast_ids_are_hub_ids():
    fast = fast_id_factory(random.Random(99))
    slow = random.Random(99)
    assert [fast() for _ in range(2000)] == [new_id(slow) for _ in range(2000)]


def test_an_organization_does_not_depend_on_the_others():
    ctx = Context(3, SCALES['small'], AS_OF, [], None)
    after_others = [generate_org(ctx, i) for i in range(4)][3]
    alone = generate_org(Context(3, SCALES['small'], AS_OF, [], None), 3)
    assert alone.tables == after_others.tables and alone.id == ctx.org_id(3)
    assert generate_org(ctx, 2).tables != alone.tables


def test_as_of_moves_timestamps_not_ids():
    early = generate_org(Context(3, SCALES['tiny'], AS_OF, [], None), 0)
    late = generate_org(Context(3, SCALES['tiny'], datetime.date(2025, 3, 1), [], None), 0)
    assert early.id == late.id
    assert early.tables['workflow_executions'] != late.tables['workflow_executions']


@pytest.mark.parametrize('recipe', graphs.RECIPES, ids=lambda r: r['key'])
def test_every_recipe_builds_valid_graphs(recipe):
    for n in range(25):
        rng = random.Random(n)
        binding = {} if n % 5 == 0 else dict(agents={'sdr': ['ca'], 'ops': ['cb']},
                                              teams=['ct'], integrations={'slack': 'ci'})
        nodes, edges, _ = graphs.build(recipe, rng, **binding)
        assert graph.validate(nodes, edges) == []
        runs = graphs.paths(nodes, edges)
        order = graph.topological_order(nodes, edges)
        for run in runs:
            assert run[0] == nodes[0]['id'] and [n for n in order if n in run] == run


def test_pools_are_the_same_in_every_process():
    from hub.seed.pools import pools

    code = ('from hub.seed.pools import pools; p = pools(); '
            'print(repr((p.first_names, p.companies, p.sentences, p.subjects)))')
    child = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                           check=True)
    p = pools()
    assert child.stdout.strip() == repr((p.first_names, p.companies, p.sentences, p.subjects))


NASTY = ['tab\there', 'line\nbreak\r\n', 'back\\slash \\N', 'quote " and \'', 'ünïcödé ✓',
         '{braces,commas}', '', 'NULL']


def test_copy_text_round_trips_every_kind_of_field(database):
    database.execute_sql('CREATE TEMP TABLE t (s text, j jsonb, a text[], ja jsonb[], n text)')
    lines = []
    for value in NASTY:
        fragment = ('"' + copytext.item_fragment('{"k":') + copytext.item_fragment(
            copytext.dumps(value)) + copytext.item_fragment('}') + '"')
        lines.append(copytext.line([copytext.esc(value), copytext.jsonb({'v': value}),
                                    copytext.text_array([value, 'x']),
                                    copytext.jsonb_array([{'v': value}, [value]]),
                                    copytext.NULL]))
        lines.append(copytext.line([copytext.esc(value), copytext.jsonb(value),
                                    copytext.text_array([]), '{' + fragment + '}',
                                    copytext.NULL]))
    cursor = database.connection().cursor()
    cursor.copy_expert('COPY t FROM STDIN', io.StringIO(''.join(lines)))
    got = database.execute_sql('SELECT s, j, a, ja, n FROM t').fetchall()
    expected = []
    for value in NASTY:
        expected.append((value, {'v': value}, [value, 'x'], [{'v': value}, [value]], None))
        expected.append((value, value, [], [{'k': value}], None))
    assert got == expected


def test_timestamp_formats_agree_with_datetime():
    rng = random.Random(5)
    for ms in [0, 951782400000, 1738281599999] + [rng.randrange(2 ** 41) for _ in range(3000)]:
        moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=ms)
        assert copytext.ts(ms) == moment.strftime('%Y-%m-%d %H:%M:%S.') + '%03d+00' % (ms % 1000)
        assert copytext.iso(ms) == moment.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (ms % 1000)


def test_timestamps_format_like_postgres_reads_them(database):
    ms = 1738281599999  # 2025-01-30 23:59:59.999 UTC
    text = database.execute_sql('SELECT %s::timestamptz = to_timestamp(%s / 1000.0), '
                                '%s::timestamptz = %s::timestamptz',
                                (copytext.ts(ms), ms, copytext.ts(ms),
                                 copytext.iso(ms))).fetchone()
    assert text == (True, True)


def test_the_copy_column_lists_are_the_models_columns():
    """The seeder writes every column the models declare, and only those: a column added to a
    model without a seeding rule fails here instead of silently seeding as NULL or default."""
    from hub import models
    from hub.seed.generate import COLUMNS, TABLES

    declared = {m._meta.table_name: [f.column_name for f in m._meta.sorted_fields]
                for m in models.MODELS}
    assert sorted(TABLES) == sorted(declared)
    for table in TABLES:
        columns = COLUMNS[table]
        columns = columns.split() if isinstance(columns, str) else list(columns)
        assert sorted(columns) == sorted(declared[table]), table


def test_slug_suffixes_never_repeat_within_a_seed():
    # A random suffix repeated about once in 1,000,000 organizations (a failed seed); this one
    # is a permutation of the index. 300,000 indices at three offsets, the last across the
    # boundary where suffixes grow to seven characters.
    keys = slug_keys(42)
    for first in (0, 1 << 30, SLUG_SUFFIX_SPACE - 150000):
        suffixes = {slug_suffix(keys, i) for i in range(first, first + 300000)}
        assert len(suffixes) == 300000
    assert [len(slug_suffix(keys, i)) for i in (0, SLUG_SUFFIX_SPACE - 1, SLUG_SUFFIX_SPACE)] \
        == [6, 6, 7]
    # Another seed scrambles differently.
    assert [slug_suffix(keys, i) for i in range(5)] != \
        [slug_suffix(slug_keys(43), i) for i in range(5)]


def test_an_organizations_slug_is_known_without_generating_it():
    ctx = Context(42, SCALES['tiny'], datetime.date(2025, 1, 31), [], None)
    for index in (0, 7, 123456):
        slug = ctx.org_slug(index)
        assert generate_org(ctx, index).tables['organizations'][0].split('\t')[2] == slug
        assert slug.rpartition('-')[2] == slug_suffix(ctx.slug_keys, index)
