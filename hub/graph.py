"""Workflow graphs (React Flow `nodes` / `edges`): the one validator and layout everyone uses.

    >>> from hub import graph
    >>> nodes = [graph.node('t', 'trigger', {'label': 'New lead'}),
    ...          graph.node('a', 'agent', {'label': 'Qualify'}),
    ...          graph.node('o', 'end', {'label': 'Done'})]
    >>> edges = [graph.edge('t', 'a'), graph.edge('a', 'o')]
    >>> graph.place(nodes, edges)          # layered, left to right, on the grid
    >>> [n['position'] for n in nodes]
    [{'x': 0, 'y': 0}, {'x': 220, 'y': 0}, {'x': 440, 'y': 0}]
    >>> graph.validate(nodes, edges)       # [] when valid, else "path: problem" strings
    []
    >>> graph.topological_order(nodes, edges)
    ['t', 'a', 'o']

A valid graph has two halves, both checked by `validate`:

Structure. Every node has a unique string `id`, a known `type` (NODES), a numeric
`position {x, y}` and a `data` object with a non-blank `label` and the keys its type needs;
`sourcePosition` / `targetPosition`, when present, are 'right' / 'left'. Every edge has a unique
`id` and a `source` and `target` naming existing nodes. Handles: an edge leaving a condition
names its `sourceHandle`, 'true' or 'false', labelled 'Yes' or 'No' (every condition uses both);
no other edge names a handle. A trigger has no incoming edge and an end node no outgoing one.
The graph is a DAG whose every node is reachable from a trigger.

Layout, as a reader sees it. A node is a NODE_WIDTH x NODE_HEIGHT box whose top-left corner is
its position; an edge is the straight segment from its source's right middle to its target's
left middle. Each edge runs left to right, no two boxes overlap, no edge passes through a node
that is not one of its ends, no two edges cross (meeting at a shared end is fine), and a
condition's Yes targets are all drawn above its No targets.

`place` lays a graph out on the grid (columns COLUMN_PITCH apart, rows in steps of
HALF_ROW) so that it passes; docs/graphs.md is the contract for front ends, written from the
constants below by tools/graph_docs.py.
"""
from collections import defaultdict, deque

from hub.errors import GraphError

#: Node types: what each does and the `data` keys it needs besides `label`.
NODES = {
    'trigger': ('Starts a run (`trigger`: webhook, schedule, email or manual).', ()),
    'schedule': ('Waits for a time or a cron expression inside a run.', ()),
    'webhook': ('Calls out to a URL with a payload, fire and forget.', ()),
    'agent': ('Runs one AI agent on a prompt.', ()),
    'team': ('Runs a team of agents (hierarchical, collaborative, pipeline).', ()),
    'condition': ('Evaluates `expression` and continues on its Yes or No branch.', ('expression',)),
    'filter': ('Keeps the items that match a condition.', ()),
    'loop': ('Runs the next steps once per item.', ()),
    'transform': ('Reshapes data (mapping, expression).', ()),
    'code': ('Runs a snippet of code.', ()),
    'delay': ('Waits for a duration or until a time.', ()),
    'http': ('Makes an HTTP request.', ()),
    'database': ('Runs a SQL query.', ()),
    'slack': ('Posts to Slack.', ()),
    'gmail': ('Sends or reads Gmail.', ()),
    'email': ('Sends an email over SMTP.', ()),
    'crm': ('Reads or writes a CRM record.', ()),
    'sheets': ('Reads or writes a spreadsheet.', ()),
    'notion': ('Reads or writes a Notion page or database.', ()),
    'end': ('Ends the run and records its `result`.', ()),
}
#: Node types a workflow may use.
NODE_TYPES = frozenset(NODES)
#: Types a graph may start at: they have no target handle.
START_TYPES = frozenset({'trigger'})
#: Types a run stops at: they have no source handle.
END_TYPES = frozenset({'end'})
#: A condition's source handles, top to bottom, and the label its edges carry.
BRANCHES = {'true': 'Yes', 'false': 'No'}
CONDITION = 'condition'
#: Where handles sit: targets on the left side of a node, sources on the right.
TARGET_POSITION, SOURCE_POSITION = 'left', 'right'
#: The box the layout assumes for every node (px); a front end draws nodes this size.
NODE_WIDTH, NODE_HEIGHT = 160, 60
#: Layout grid: columns COLUMN_PITCH apart, rows on multiples of HALF_ROW (two rows are at
#: least ROW_PITCH apart so boxes keep a ROW_PITCH - NODE_HEIGHT gap).
COLUMN_GAP, ROW_GAP = 60, 40
COLUMN_PITCH, ROW_PITCH = NODE_WIDTH + COLUMN_GAP, NODE_HEIGHT + ROW_GAP
HALF_ROW = ROW_PITCH // 2


def node(node_id, node_type, data=None, x=0, y=0):
    return {'id': node_id, 'type': node_type, 'position': {'x': x, 'y': y},
            'sourcePosition': SOURCE_POSITION, 'targetPosition': TARGET_POSITION,
            'data': data or {}}


def edge(source, target, edge_id=None, **extra):
    result = {'id': edge_id or 'e-%s-%s' % (source, target), 'source': source, 'target': target}
    result.update(extra)
    return result


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(nodes, edges, layout=True):
    """Every rule the graph breaks, as 'path: problem' strings ([] when valid).

    `layout=False` checks the structure only: what a graph must be to run. The layout rules
    (no edge through a node, no crossing, Yes above No) hold for what this project ships and
    generates; a user's own graph (an import, a private template) may be drawn as they like.
    """
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
        errors.extend(_node_problems(item, where))
        if not problem and isinstance(item.get('type'), str):  # else only its own error counts
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
            if not isinstance(item.get(end), str) or item.get(end) not in by_id:
                errors.append('%s.%s: no node has id %r' % (where, end, item.get(end)))
                ends_ok = False
        if ends_ok:
            adjacency[item['source']].append(item['target'])
            if item['source'] == item['target']:
                errors.append('%s: a node cannot connect to itself' % where)
            errors.extend(_handle_problems(item, where, by_id))
    if errors:
        return errors
    errors.extend(_branch_problems(nodes, edges))
    if _order(by_id, adjacency) is None:
        return errors + ['edges: the graph has a cycle; a workflow must be a DAG']
    starts = [n for n, item in by_id.items() if item['type'] in START_TYPES]
    if not starts:
        return errors + ['nodes: no trigger node; a workflow starts at a trigger']
    reached = _reachable(starts, adjacency)
    for i, item in enumerate(nodes):
        if item['id'] not in reached:
            errors.append('nodes[%d]: %r is not reachable from a trigger' % (i, item['id']))
    if layout:
        errors.extend(layout_problems(nodes, edges))
    return errors


def _id_problem(value, seen, kind):
    if not isinstance(value, str) or not value:
        return 'expected a non-empty string'
    if value in seen:
        return 'duplicate %s id %r' % (kind, value)
    return None


def _node_problems(item, where):
    errors = []
    node_type = item.get('type')
    if not isinstance(node_type, str) or node_type not in NODE_TYPES:
        errors.append('%s.type: unknown node type %r; use one of %s'
                      % (where, node_type, ', '.join(sorted(NODE_TYPES))))
        node_type = None
    position = item.get('position')
    if not isinstance(position, dict) or not (_number(position.get('x'))
                                              and _number(position.get('y'))):
        errors.append('%s.position: expected {"x": number, "y": number}' % where)
    for key, wanted in (('sourcePosition', SOURCE_POSITION), ('targetPosition', TARGET_POSITION)):
        if key in item and item[key] != wanted:
            errors.append('%s.%s: %r; handles are laid out left to right, use %r'
                          % (where, key, item[key], wanted))
    data = item.get('data')
    if not isinstance(data, dict):
        errors.append('%s.data: expected an object' % where)
        return errors
    label = data.get('label')
    if not isinstance(label, str) or not label.strip():
        errors.append('%s.data.label: expected a non-blank string, got %r' % (where, label))
    for key in NODES.get(node_type, ('', ()))[1]:
        if key not in data:
            errors.append('%s.data.%s: missing; a %s node needs it' % (where, key, node_type))
    return errors


def _handle_problems(item, where, by_id):
    source, target = by_id[item['source']], by_id[item['target']]
    handle = item.get('sourceHandle')
    errors = []
    if source['type'] == CONDITION:
        if handle not in BRANCHES:
            errors.append('%s.sourceHandle: %r; an edge leaving condition %r uses "true" or '
                          '"false"' % (where, handle, source['id']))
        elif item.get('label') != BRANCHES[handle]:
            errors.append('%s.label: %r; a %r edge is labelled %r'
                          % (where, item.get('label'), handle, BRANCHES[handle]))
    elif handle is not None:
        errors.append('%s.sourceHandle: %r; only condition nodes have named handles, drop it'
                      % (where, handle))
    if item.get('targetHandle') is not None:
        errors.append('%s.targetHandle: %r; a node has one target handle, drop it'
                      % (where, item['targetHandle']))
    if source['type'] in END_TYPES:
        errors.append('%s: %r is an end node; nothing runs after it' % (where, source['id']))
    if target['type'] in START_TYPES:
        errors.append('%s: %r is a trigger; nothing leads into it' % (where, target['id']))
    return errors


def _branch_problems(nodes, edges):
    used = defaultdict(set)
    for item in edges:
        used[item['source']].add(item.get('sourceHandle'))
    return ['nodes[%d]: condition %r has no %r edge; connect its %s branch'
            % (i, item['id'], handle, label)
            for i, item in enumerate(nodes) if item['type'] == CONDITION
            for handle, label in BRANCHES.items() if handle not in used[item['id']]]


# -- layout geometry ---------------------------------------------------------------------------

def _box(item):
    x, y = item['position']['x'], item['position']['y']
    return x, y, x + NODE_WIDTH, y + NODE_HEIGHT


def _segment(source, target):
    """The drawn edge: source's right middle to target's left middle."""
    return ((source['position']['x'] + NODE_WIDTH, source['position']['y'] + NODE_HEIGHT / 2),
            (target['position']['x'], target['position']['y'] + NODE_HEIGHT / 2))


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _through(segment, box):
    """Whether the segment runs through the box's interior (touching its border is fine)."""
    (x1, y1), (x2, y2) = segment
    low, high = 0.0, 1.0
    for delta, start, lo, hi in ((x2 - x1, x1, box[0], box[2]), (y2 - y1, y1, box[1], box[3])):
        if delta == 0:
            if not lo < start < hi:
                return False
            continue
        t1, t2 = (lo - start) / delta, (hi - start) / delta
        low, high = max(low, min(t1, t2)), min(high, max(t1, t2))
        if low >= high:
            return False
    return True


def _orient(a, b, c):
    value = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return (value > 0) - (value < 0)


def _on(a, b, p):
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def _cross(s, t):
    """Whether two segments meet anywhere but at one shared end point."""
    (a, b), (c, d) = s, t
    o1, o2, o3, o4 = _orient(a, b, c), _orient(a, b, d), _orient(c, d, a), _orient(c, d, b)
    if o1 == o2 == 0:  # collinear: crossing when they overlap in more than a point
        axis = 0 if a[0] != b[0] else 1
        lo = max(min(a[axis], b[axis]), min(c[axis], d[axis]))
        hi = min(max(a[axis], b[axis]), max(c[axis], d[axis]))
        return lo < hi
    if o1 * o2 < 0 and o3 * o4 < 0:
        return True
    shared = {a, b} & {c, d}
    for orient, point, (p, q) in ((o1, c, s), (o2, d, s), (o3, a, t), (o4, b, t)):
        if orient == 0 and point not in shared and _on(p, q, point):
            return True
    return False


def layout_problems(nodes, edges):
    """The reader-facing rules (see the module doc) a structurally valid graph breaks."""
    by_id = {n['id']: n for n in nodes}
    index = {n['id']: i for i, n in enumerate(nodes)}
    errors = []
    for i, item in enumerate(edges):
        if not by_id[item['source']]['position']['x'] < by_id[item['target']]['position']['x']:
            errors.append('edges[%d]: %r is not left of %r; lay the graph out left to right'
                          % (i, item['source'], item['target']))
    boxes = sorted((_box(n), n['id']) for n in nodes)
    for i, (a, first) in enumerate(boxes):
        for b, second in boxes[i + 1:]:
            if b[0] >= a[2]:
                break
            if _overlap(a, b):
                errors.append('nodes: %r and %r overlap' % (first, second))
    if errors:
        return errors
    segments = [_segment(by_id[e['source']], by_id[e['target']]) for e in edges]
    for i, item in enumerate(edges):
        for other in nodes:
            if other['id'] not in (item['source'], item['target']) and \
                    _through(segments[i], _box(other)):
                errors.append('edges[%d]: the line %s -> %s runs through node %r; move it to '
                              'another row' % (i, item['source'], item['target'], other['id']))
    for i, j in _crossings(segments):
        errors.append('edges[%d]: the line %s -> %s crosses edges[%d] %s -> %s; reorder the rows'
                      % (i, edges[i]['source'], edges[i]['target'], j, edges[j]['source'],
                         edges[j]['target']))
    for node_id, yes, no in _branch_heights(nodes, edges):
        if max(yes) >= min(no):
            errors.append('nodes[%d]: condition %r draws its Yes branch (y=%s) below its No '
                          'branch (y=%s); put the "true" targets above the "false" ones'
                          % (index[node_id], node_id, max(yes), min(no)))
    return errors


def _crossings(segments):
    for i, s in enumerate(segments):
        for j in range(i + 1, len(segments)):
            if _cross(s, segments[j]):
                yield i, j


def _branch_heights(nodes, edges):
    by_id = {n['id']: n for n in nodes}
    heights = defaultdict(lambda: {handle: [] for handle in BRANCHES})
    for item in edges:
        if by_id[item['source']]['type'] == CONDITION and item.get('sourceHandle') in BRANCHES:
            heights[item['source']][item['sourceHandle']].append(
                by_id[item['target']]['position']['y'])
    for node_id, found in heights.items():
        if all(found.values()):
            yield node_id, found['true'], found['false']


def layout_counts(nodes, edges):
    """{'through': edges through a node, 'crossings': crossing pairs, 'swapped': conditions
    with Yes below No} of a structurally valid graph, for reports and tests."""
    by_id = {n['id']: n for n in nodes}
    segments = [_segment(by_id[e['source']], by_id[e['target']]) for e in edges]
    through = sum(1 for s, e in zip(segments, edges) for n in nodes
                  if n['id'] not in (e['source'], e['target']) and _through(s, _box(n)))
    swapped = sum(1 for _, yes, no in _branch_heights(nodes, edges) if max(yes) >= min(no))
    return {'through': through, 'crossings': sum(1 for _ in _crossings(segments)),
            'swapped': swapped}


def extent(nodes):
    """(columns, width px, height px) of a laid-out graph."""
    xs = [n['position']['x'] for n in nodes]
    ys = [n['position']['y'] for n in nodes]
    return (len(set(xs)), max(xs) - min(xs) + NODE_WIDTH, max(ys) - min(ys) + NODE_HEIGHT)


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


def check(nodes, edges, where='workflow', layout=True):
    """Raise GraphError naming the first broken rule (prefixed with `where`)."""
    errors = validate(nodes, edges, layout)
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


# -- layout -----------------------------------------------------------------------------------

_SEARCH_BUDGET = 50000  # candidate rows tried before giving up on a clean layout
_REACH = 12             # how many half rows above / below its preferred row a node may go


def place(nodes, edges):
    """Set every node's position so the graph passes `layout_problems` (when it can).

    Columns: the longest path from a start. Rows: nodes are placed in topological order, each
    at the free half row nearest the mean of its predecessors' rows (siblings fanned out around
    it, a condition's Yes branch above its No branch, so a merge node lands between its
    predecessors), skipping rows where a line would pass through a node or cross another
    line; a dead end backtracks. A graph that has no clean layout within the search budget
    gets the preferred rows and `validate` reports what is wrong.
    """
    order = topological_order(nodes, edges)
    column = {n: 0 for n in order}
    incoming, outgoing = defaultdict(list), defaultdict(list)
    for item in edges:
        outgoing[item['source']].append(item)
    for node_id in order:
        for item in outgoing[node_id]:
            column[item['target']] = max(column[item['target']], column[node_id] + 1)
    for node_id in order:
        successors = sorted(outgoing[node_id], key=lambda e: _BRANCH_RANK.get(
            e.get('sourceHandle'), 1))
        for i, item in enumerate(successors):
            incoming[item['target']].append((node_id, 2 * i - (len(successors) - 1), item))
    layout = _Layout(column, incoming)
    if not layout.search(order):
        layout.row = {n: layout.preferred(n) for n in order}
    top = min(layout.row.values())
    by_id = {n['id']: n for n in nodes}
    for node_id in order:
        by_id[node_id]['position'] = {'x': column[node_id] * COLUMN_PITCH,
                                      'y': (layout.row[node_id] - top) * HALF_ROW}


_BRANCH_RANK = {'true': 0, None: 1, 'false': 2}


class _Layout:
    """Rows (in half-row units) chosen one node at a time, with backtracking."""

    def __init__(self, column, incoming):
        self.column, self.incoming = column, incoming
        self.row = {}
        self.segments = []      # (source id, target id, segment) of placed edges
        self.budget = _SEARCH_BUDGET

    def preferred(self, node_id):
        wanted = [self.row.get(source, 0) + fan for source, fan, _ in self.incoming[node_id]]
        if not wanted:
            return max(self.row.values(), default=-2) + 2
        return int(sum(wanted) / len(wanted) + 0.5 + 1000) - 1000  # round half up

    def search(self, order, at=0):
        if at == len(order):
            return True
        node_id = order[at]
        base = self.preferred(node_id)
        for row in sorted(range(base - _REACH, base + _REACH + 1), key=lambda r: (abs(r - base), r)):
            self.budget -= 1
            if self.budget < 0:
                return False
            added = self._try(node_id, row)
            if added is None:
                continue
            if self.search(order, at + 1):
                return True
            del self.row[node_id]
            del self.segments[len(self.segments) - added:]
        return False

    def _box(self, node_id, row):
        x, y = self.column[node_id] * COLUMN_PITCH, row * HALF_ROW
        return x, y, x + NODE_WIDTH, y + NODE_HEIGHT

    def _try(self, node_id, row):
        box = self._box(node_id, row)
        boxes = {n: self._box(n, r) for n, r in self.row.items()}
        if any(_overlap(box, other) for other in boxes.values()):
            return None
        if any(_through(segment, box) for _, _, segment in self.segments):
            return None
        new = []
        for source, _, item in self.incoming[node_id]:
            segment = ((boxes[source][2], boxes[source][1] + NODE_HEIGHT / 2),
                       (box[0], box[1] + NODE_HEIGHT / 2))
            if any(_through(segment, b) for n, b in boxes.items() if n != source):
                return None
            if any(_cross(segment, other) for _, _, other in self.segments):
                return None
            if item.get('sourceHandle') in BRANCHES and not self._branches_ok(
                    source, item['sourceHandle'], row):
                return None
            new.append((source, node_id, segment))
        self.row[node_id] = row
        self.segments.extend(new)
        return len(new)

    def _branches_ok(self, condition, handle, row):
        for target, branch in self._branch_targets(condition):
            if branch != handle and ((handle == 'true' and row >= self.row[target]) or
                                     (handle == 'false' and row <= self.row[target])):
                return False
        return True

    def _branch_targets(self, condition):
        for target, incoming in self.incoming.items():
            if target in self.row:
                for source, _, item in incoming:
                    if source == condition:
                        yield target, item.get('sourceHandle')
