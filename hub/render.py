"""A workflow graph as a standalone SVG picture, drawn from its stored positions.

    >>> from hub import graph, render
    >>> nodes = [graph.node('t', 'trigger', {'label': 'New lead', 'trigger': 'webhook'}),
    ...          graph.node('o', 'end', {'label': 'Done'}, x=220)]
    >>> picture = render.svg(nodes, [graph.edge('t', 'o')], title='Tiny')
    >>> picture.startswith('<svg') and 'New lead' in picture
    True

What it draws is what `hub.graph` checks: each node a NODE_WIDTH x NODE_HEIGHT box at its
position (its type above its label), each edge a straight line from the source's right middle
to the target's left middle, a condition's edges labelled Yes / No at their middle. The text is
a pure function of the graph (no clock, no randomness), so a stored picture can be compared
with a fresh one to tell whether it is stale.
"""
from xml.sax.saxutils import escape

from hub import graph

MARGIN = 24
_LINE_CHARS = 19          # characters of a bold 12 px label that fit in one line of a box
_COLORS = {               # (fill, stroke) per node type group
    'start': ('#e8f5e9', '#2e7d32'), 'branch': ('#fff8e1', '#f9a825'),
    'ai': ('#f3e5f5', '#7b1fa2'), 'end': ('#eceff1', '#455a64'),
    'logic': ('#e0f2f1', '#00796b'), 'app': ('#e3f2fd', '#1565c0'),
}
_GROUP = dict.fromkeys(graph.START_TYPES, 'start')
_GROUP.update(dict.fromkeys(graph.END_TYPES, 'end'))
_GROUP.update({graph.CONDITION: 'branch', 'agent': 'ai', 'team': 'ai', 'filter': 'logic',
               'loop': 'logic', 'transform': 'logic', 'code': 'logic', 'delay': 'logic',
               'schedule': 'logic'})


def _num(value):
    return ('%.1f' % value).rstrip('0').rstrip('.')


def _lines(label):
    """The label in at most two lines of _LINE_CHARS, cut with an ellipsis when longer."""
    words, lines, current = label.split(), [], ''
    for word in words:
        candidate = (current + ' ' + word).strip()
        if len(candidate) <= _LINE_CHARS or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    lines.append(current)
    if len(lines) > 2:
        lines = [lines[0], lines[1] + ' ' + ' '.join(lines[2:])]
    return [line if len(line) <= _LINE_CHARS else line[:_LINE_CHARS - 1] + '\u2026'
            for line in lines]


def svg(nodes, edges, title=None):
    """The SVG document (a str) of a laid-out graph; `title` becomes its <title>."""
    by_id = {n['id']: n for n in nodes}
    left = min(n['position']['x'] for n in nodes) - MARGIN
    top = min(n['position']['y'] for n in nodes) - MARGIN
    width = max(n['position']['x'] for n in nodes) + graph.NODE_WIDTH + MARGIN - left
    height = max(n['position']['y'] for n in nodes) + graph.NODE_HEIGHT + MARGIN - top
    out = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="%s %s %s %s" width="%s" height="%s" '
           'font-family="Helvetica, Arial, sans-serif">' % (_num(left), _num(top), _num(width),
                                                            _num(height), _num(width),
                                                            _num(height))]
    if title:
        out.append('<title>%s</title>' % escape(title))
    out.append('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
               'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
               'fill="#607d8b"/></marker></defs>')
    out.append('<rect x="%s" y="%s" width="%s" height="%s" fill="#ffffff"/>'
               % (_num(left), _num(top), _num(width), _num(height)))
    labels = []
    for item in edges:
        (x1, y1), (x2, y2) = graph._segment(by_id[item['source']], by_id[item['target']])
        out.append('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#607d8b" stroke-width="1.5" '
                   'marker-end="url(#arrow)"/>' % tuple(map(_num, (x1, y1, x2, y2))))
        if item.get('label'):
            labels.append(((x1 + x2) / 2, (y1 + y2) / 2, item['label'],
                           item.get('sourceHandle')))
    for item in nodes:
        out.extend(_node(item))
    for x, y, text, handle in labels:  # drawn last so no line runs over them
        color = {'true': '#2e7d32', 'false': '#c62828'}.get(handle, '#37474f')
        half = 4 + 3.5 * len(text)
        out.append('<rect x="%s" y="%s" width="%s" height="16" rx="3" fill="#ffffff" '
                   'stroke="%s"/>' % (_num(x - half), _num(y - 8), _num(2 * half), color))
        out.append('<text x="%s" y="%s" font-size="11" text-anchor="middle" fill="%s">%s</text>'
                   % (_num(x), _num(y + 4), color, escape(text)))
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def _node(item):
    x, y = item['position']['x'], item['position']['y']
    fill, stroke = _COLORS[_GROUP.get(item['type'], 'app')]
    parts = ['<g><title>%s</title>' % escape('%s (%s)' % (item['id'], item['type'])),
             '<rect x="%s" y="%s" width="%d" height="%d" rx="8" fill="%s" stroke="%s" '
             'stroke-width="1.5"/>' % (_num(x), _num(y), graph.NODE_WIDTH, graph.NODE_HEIGHT,
                                       fill, stroke),
             '<text x="%s" y="%s" font-size="10" fill="%s">%s</text>'
             % (_num(x + 8), _num(y + 14), stroke, escape(item['type']))]
    lines = _lines(str(item['data'].get('label', item['id'])))
    first = y + (34 if len(lines) == 1 else 30)
    for i, line in enumerate(lines):
        parts.append('<text x="%s" y="%s" font-size="12" font-weight="bold" fill="#263238">%s'
                     '</text>' % (_num(x + 8), _num(first + 14 * i), escape(line)))
    parts.append('</g>')
    return parts
