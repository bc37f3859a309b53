"""Graphs read well: no edge through a node, no crossing, Yes above No, on every shipped and
seeded graph; and the validator catches each of those on a graph that breaks it."""
import copy
import json
import random

import pytest

from hub import graph, marketplace
from hub.seed import graphs as recipes

SEEDS = range(40)
MAX_WIDTH = 2048  # px: fits a 1024 px canvas at React Flow's default minZoom 0.5


def shipped():
    folder = marketplace.fixtures_dir()
    return {f.name[:-5]: json.loads(f.read_text()) for f in sorted(folder.iterdir())
            if f.name.endswith('.json')}


def seeded():
    """Every recipe built under many seeds, with and without teams and agents to bind."""
    for seed in SEEDS:
        rng = random.Random(seed)
        for recipe in recipes.RECIPES:
            binding = {'agents': {'sdr': ['a1'], 'support': ['a2']}, 'teams': ['t1']} \
                if seed % 2 else {}
            nodes, edges, _ = recipes.build(recipe, rng, **binding)
            yield recipe['key'], nodes, edges


def _bezier(segment, steps=24):
    """React Flow's default edge (right to left handles): a cubic with both controls at mid x."""
    (sx, sy), (tx, ty) = segment
    mx = (sx + tx) / 2
    points = []
    for i in range(steps + 1):
        u = i / steps
        a, b, c, d = (1 - u) ** 3, 3 * (1 - u) ** 2 * u, 3 * (1 - u) * u * u, u ** 3
        points.append((a * sx + (b + c) * mx + d * tx, (a + b) * sy + (c + d) * ty))
    return list(zip(points, points[1:]))


def _bezier_problems(nodes, edges):
    by_id = {n['id']: n for n in nodes}
    curves = [_bezier(graph._segment(by_id[e['source']], by_id[e['target']])) for e in edges]
    through = sum(1 for curve, e in zip(curves, edges) for n in nodes
                  if n['id'] not in (e['source'], e['target'])
                  and any(graph._through(piece, graph._box(n)) for piece in curve))
    crossings = sum(1 for i in range(len(curves)) for j in range(i + 1, len(curves))
                    if any(graph._cross(p, q) for p in curves[i] for q in curves[j]))
    return through, crossings


def test_every_shipped_and_seeded_graph_is_laid_out_cleanly(capsys):
    totals = {'graphs': 0, 'edges': 0, 'through': 0, 'crossings': 0, 'swapped': 0,
              'conditions': 0, 'bezier through': 0, 'bezier crossings': 0}
    widest = (0, 0, '')
    kinds = set()
    cases = [(stem, doc['nodes'], doc['edges']) for stem, doc in shipped().items()]
    cases += list(seeded())
    for name, nodes, edges in cases:
        assert graph.validate(nodes, edges) == [], name
        counts = graph.layout_counts(nodes, edges)
        through, crossings = _bezier_problems(nodes, edges)
        columns, width, _ = graph.extent(nodes)
        widest = max(widest, (width, columns, name))
        kinds.add(name)
        totals['graphs'] += 1
        totals['edges'] += len(edges)
        totals['conditions'] += sum(1 for n in nodes if n['type'] == graph.CONDITION)
        for key in ('through', 'crossings', 'swapped'):
            totals[key] += counts[key]
        totals['bezier through'] += through
        totals['bezier crossings'] += crossings
    with capsys.disabled():
        print('\nlayout: %s; widest %d px (%d columns, %s)' % (totals, *widest))
    assert totals['graphs'] == len(shipped()) + len(SEEDS) * len(recipes.RECIPES) >= 500
    assert kinds >= set(shipped()) | {r['key'] for r in recipes.RECIPES}
    assert totals['conditions'] > 200
    assert (totals['through'], totals['crossings'], totals['swapped']) == (0, 0, 0)
    assert (totals['bezier through'], totals['bezier crossings']) == (0, 0)
    assert widest[0] <= MAX_WIDTH


def test_layout_is_on_the_grid_and_deterministic():
    first = [copy.deepcopy(n) for _, n, _ in seeded()]
    again = [n for _, n, _ in seeded()]
    assert first == again
    for nodes in again:
        for item in nodes:
            assert item['position']['x'] % graph.COLUMN_PITCH == 0
            assert item['position']['y'] % graph.HALF_ROW == 0
            assert (item['sourcePosition'], item['targetPosition']) == ('right', 'left')
        assert min(n['position']['y'] for n in nodes) == 0


# -- the validator catches what a reader would see ---------------------------------------------

def _flow(*rows):
    """Nodes from (id, type, column, row in half rows), edges added by the caller."""
    return [graph.node(i, t, {'label': i, 'expression': 'x'} if t == 'condition' else
                       {'label': i}, c * graph.COLUMN_PITCH, r * graph.HALF_ROW)
            for i, t, c, r in rows]


def _problems(nodes, edges):
    return graph.validate(nodes, edges)


def test_an_edge_through_a_node_is_refused():
    # t -> m -> o on one row, plus t -> o: the long edge runs straight through m.
    nodes = _flow(('t', 'trigger', 0, 0), ('m', 'agent', 1, 0), ('o', 'end', 2, 0))
    edges = [graph.edge('t', 'm'), graph.edge('m', 'o'), graph.edge('t', 'o')]
    assert "edges[2]: the line t -> o runs through node 'm'; move it to another row" in \
        _problems(nodes, edges)
    graph.place(nodes, edges)
    assert _problems(nodes, edges) == []


def test_a_corner_clipped_by_an_edge_is_refused():
    # The line from a (row 0) to o (row 2) cuts b's top-left corner; touching it is not enough.
    nodes = _flow(('t', 'trigger', 0, 0), ('a', 'agent', 1, 0), ('b', 'agent', 2, 2),
                  ('o', 'end', 3, 3))
    edges = [graph.edge('t', 'a'), graph.edge('a', 'b'), graph.edge('a', 'o'),
             graph.edge('b', 'o')]
    assert any("runs through node 'b'" in p for p in _problems(nodes, edges))


def test_crossing_edges_are_refused_but_a_shared_end_is_fine():
    nodes = _flow(('t', 'trigger', 0, 2), ('a', 'agent', 1, 0), ('b', 'agent', 1, 4),
                  ('x', 'end', 2, 0), ('y', 'end', 2, 4))
    fine = [graph.edge('t', 'a'), graph.edge('t', 'b'), graph.edge('a', 'x'), graph.edge('b', 'y')]
    assert _problems(nodes, fine) == []
    crossed = fine[:2] + [graph.edge('a', 'y'), graph.edge('b', 'x')]
    assert _problems(nodes, crossed) == [
        'edges[2]: the line a -> y crosses edges[3] b -> x; reorder the rows']


def test_yes_must_be_drawn_above_no():
    nodes = _flow(('t', 'trigger', 0, 1), ('c', 'condition', 1, 1), ('y', 'end', 2, 2),
                  ('n', 'end', 2, 0))
    edges = [graph.edge('t', 'c'),
             graph.edge('c', 'y', sourceHandle='true', label='Yes'),
             graph.edge('c', 'n', sourceHandle='false', label='No')]
    assert _problems(nodes, edges) == [
        "nodes[1]: condition 'c' draws its Yes branch (y=100) below its No branch (y=0); "
        'put the "true" targets above the "false" ones']
    graph.place(nodes, edges)
    assert _problems(nodes, edges) == []
    assert nodes[2]['position']['y'] < nodes[3]['position']['y']


@pytest.mark.parametrize('change, message', [
    (lambda n, e: e[1].update(label='Maybe'),
     "edges[1].label: 'Maybe'; a 'true' edge is labelled 'Yes'"),
    (lambda n, e: e[1].update(sourceHandle='yes'),
     "edges[1].sourceHandle: 'yes'; an edge leaving condition 'c' uses \"true\" or \"false\""),
    (lambda n, e: e[0].update(sourceHandle='out'),
     "edges[0].sourceHandle: 'out'; only condition nodes have named handles, drop it"),
    (lambda n, e: e[0].update(targetHandle='in'),
     "edges[0].targetHandle: 'in'; a node has one target handle, drop it"),
    (lambda n, e: e.pop(2), "nodes[1]: condition 'c' has no 'false' edge; connect its No branch"),
    (lambda n, e: n[0].update(sourcePosition='bottom'),
     "nodes[0].sourcePosition: 'bottom'; handles are laid out left to right, use 'right'"),
    (lambda n, e: n[1]['data'].pop('expression'),
     'nodes[1].data.expression: missing; a condition node needs it'),
    (lambda n, e: n[1].update(type='output'),
     "nodes[1].type: unknown node type 'output'; use one of agent, code, condition, crm, "
     'database, delay, email, end, filter, gmail, http, loop, notion, schedule, sheets, slack, '
     'team, transform, trigger, webhook'),
    (lambda n, e: e.append(graph.edge('y', 't', 'back')),
     "edges[3]: 'y' is an end node; nothing runs after it"),
])
def test_handle_and_type_rules(change, message):
    nodes = _flow(('t', 'trigger', 0, 1), ('c', 'condition', 1, 1), ('y', 'end', 2, 0),
                  ('n', 'end', 2, 2))
    edges = [graph.edge('t', 'c'),
             graph.edge('c', 'y', sourceHandle='true', label='Yes'),
             graph.edge('c', 'n', sourceHandle='false', label='No')]
    assert _problems(nodes, edges) == []
    change(nodes, edges)
    assert message in _problems(nodes, edges)


def test_the_old_pull_request_layout_is_caught_and_the_new_one_is_clean():
    # The review recipe: a skip edge into a merge node. The old layout put the merge node on
    # row 0 behind the Yes branch; the validator must see that, and place() must avoid it.
    recipe = next(r for r in recipes.RECIPES if r['key'] == 'review')
    nodes, edges, _ = recipes.build(recipe, random.Random(3))
    moved = copy.deepcopy(nodes)
    for item in moved:
        item['position']['y'] = 0 if item['type'] != 'http' or 'Approve' not in \
            item['data']['label'] else 2 * graph.HALF_ROW
    assert graph.layout_counts(moved, edges)['through'] >= 1
    assert graph.layout_counts(nodes, edges) == {'through': 0, 'crossings': 0, 'swapped': 0}
