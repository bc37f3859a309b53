"""Workflow graphs (React Flow `nodes` / `edges`): the one validator and layout everyone uses.

    >>> from hub import graph
    >>> nodes = [graph.node('t', 'trigger', {'label': 'New lead'}),
    ...          graph.node('a', 'agent', {'label': 'Qualify'}),
    ...          graph.node('o', 'output', {'label': 'Done'})]
    >>> edges = [graph.edge('t', 'a'), graph.edge('a', 'o')]
    >>> graph.place(nodes, edges)          # left to right, no overlaps
    >>> [n['position'] for n in nodes]
    [{'x': 0, 'y': 0}, {'x': 280, 'y': 0}, {'x': 560, 'y': 0}]
    >>> graph.validate(nodes, edges)       # [] when valid, else "path: problem" strings
    []
    >>> graph.topological_order(nodes, edges)
    ['t', 'a', 'o']

A valid graph: every node has a unique string `id`, a known `type`, a numeric `position {x, y}`
and a `data` object; every edge has a unique `id` and a `source` and `target` naming existing
nodes; the graph is a DAG whose every node is reachable from a trigger node (so it is connected
and starts at a trigger); each edge runs left to right (source.x < target.x) and no two node
boxes (NODE_WIDTH x NODE_HEIGHT) overlap.
"""
from collections import defaultdict, deque

from hub.errors import HubError

#: Node types a workflow may use.
NODE_TYPES = frozenset({
    'trigger', 'agent', 'team', 'condition', 'http', 'slack', 'gmail', 'transform', 'delay',
    'output', 'webhook', 'database', 'code', 'filter', 'loop', 'email', 'schedule', 'notion',
    'sheets', 'crm'})
#: Types a graph may start at.
START_TYPES = frozenset({'trigger'})
NODE_WIDTH, NODE_HEIGHT = 200, 80
COLUMN_GAP, ROW_GAP = 80, 40


class GraphError(HubError):
    """A workflow graph breaks a rule; the message names the path of the bad field."""


def node(node_id, node_type, data=None, x=0, y=0):
    return {'id': node_id, 'type': node_type, 'position': {'x': x, 'y': y}, 'data': data or {}}


def edge(source, target, edge_id=None, **extra):
    result = {'id': edge_id or 'e-%s-%s' % (source, target), 'source': source, 'target': target}
    result.update(extra)
    return result


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(nodes, edges):
    """Every rule the graph breaks, as 'path: problem' strings ([] when valid)."""
    errors = []
    if not isinstance(nodes, list):
        return ['nodes: expected an array']
    if not isinstance(edges, list):
        return ['edges: expected an array']
    if not nodes:
        return ['nodes: a workflow needs at least one node']
    by_id = {}
    for i, item in enumerate(nodes):
        where = 'nodes[%d]' % i
        if not isinstance(item, dict):
            errors.append('%s: expected an object' % where)
            continue
        node_id = item.get('id')
        problem = _id_problem(node_id, by_id, 'node')
        if problem:
            errors.append('%s.id: %s' % (where, problem))
        if item.get('type') not in NODE_TYPES:
            errors.append('%s.type: unknown node type %r; use one of %s'
                          % (where, item.get('type'), ', '.join(sorted(NODE_TYPES))))
        position = item.get('position')
        if not isinstance(position, dict) or not (_number(position.get('x'))
                                                  and _number(position.get('y'))):
            errors.append('%s.position: expected {"x": number, "y": number}' % where)
        if not isinstance(item.get('data'), dict):
            errors.append('%s.data: expected an object' % where)
        if not problem:
            by_id[node_id] = item
    edge_ids = set()
    adjacency = defaultdict(list)
    for i, item in enumerate(edges):
        where = 'edges[%d]' % i
        if not isinstance(item, dict):
            errors.append('%s: expected an object' % where)
            continue
        edge_id = item.get('id')
        problem = _id_problem(edge_id, edge_ids, 'edge')
        if problem:
            errors.append('%s.id: %s' % (where, problem))
        edge_ids.add(edge_id)
        ends_ok = True
        for end in ('source', 'target'):
            if item.get(end) not in by_id:
                errors.append('%s.%s: no node has id %r' % (where, end, item.get(end)))
                ends_ok = False
        if ends_ok:
            adjacency[item['source']].append(item['target'])
            if item['source'] == item['target']:
                errors.append('%s: a node cannot connect to itself' % where)
    if errors:
        return errors
    if _order(by_id, adjacency) is None:
        return ['edges: the graph has a cycle; a workflow must be a DAG']
    starts = [n for n, item in by_id.items() if item['type'] in START_TYPES]
    if not starts:
        return ['nodes: no trigger node; a workflow starts at a trigger']
    reached = _reachable(starts, adjacency)
    for i, item in enumerate(nodes):
        if item['id'] not in reached:
            errors.append('nodes[%d]: %r is not reachable from a trigger' % (i, item['id']))
    errors.extend(_check_layout(nodes, edges, by_id))
    return errors


def _id_problem(value, seen, kind):
    if not isinstance(value, str) or not value:
        return 'expected a non-empty string'
    if value in seen:
        return 'duplicate %s id %r' % (kind, value)
    return None


def _check_layout(nodes, edges, by_id):
    errors = []
    for i, item in enumerate(edges):
        source, target = by_id[item['source']], by_id[item['target']]
        if not source['position']['x'] < target['position']['x']:
            errors.append('edges[%d]: %r is not left of %r; lay the graph out left to right'
                          % (i, item['source'], item['target']))
    boxes = sorted((n['position']['x'], n['position']['y'], n['id']) for n in nodes)
    for i, (x1, y1, a) in enumerate(boxes):
        for x2, y2, b in boxes[i + 1:]:
            if x2 - x1 >= NODE_WIDTH:
                break
            if abs(y2 - y1) < NODE_HEIGHT:
                errors.append('nodes: %r and %r overlap' % (a, b))
    return errors


def _order(by_id, adjacency):
    indegree = {n: 0 for n in by_id}
    for targets in adjacency.values():
        for target in targets:
            indegree[target] += 1
    queue = deque(n for n in by_id if indegree[n] == 0)
    order = []
    while queue:
        current = queue.popleft()
        order.append(current)
        for target in adjacency[current]:
            indegree[target] -= 1
            if indegree[target] == 0:
                queue.append(target)
    return order if len(order) == len(by_id) else None


def _reachable(starts, adjacency):
    seen, stack = set(starts), list(starts)
    while stack:
        for target in adjacency[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def check(nodes, edges, where='workflow'):
    """Raise GraphError naming the first broken rule (prefixed with `where`)."""
    errors = validate(nodes, edges)
    if errors:
        raise GraphError('%s: %s' % (where, errors[0]))


def topological_order(nodes, edges):
    """Node ids in execution order (Kahn's algorithm, ties in `nodes` order)."""
    by_id = {n['id']: n for n in nodes}
    adjacency = defaultdict(list)
    for item in edges:
        adjacency[item['source']].append(item['target'])
    order = _order(by_id, adjacency)
    if order is None:
        raise GraphError('edges: the graph has a cycle; a workflow must be a DAG')
    return order


def place(nodes, edges):
    """Set every node's position: columns by longest path from the start, rows within a column."""
    depth = {n['id']: 0 for n in nodes}
    for node_id in topological_order(nodes, edges):
        for item in edges:
            if item['source'] == node_id:
                depth[item['target']] = max(depth[item['target']], depth[node_id] + 1)
    rows = defaultdict(int)
    for item in nodes:
        column = depth[item['id']]
        item['position'] = {'x': column * (NODE_WIDTH + COLUMN_GAP),
                            'y': rows[column] * (NODE_HEIGHT + ROW_GAP)}
        rows[column] += 1
