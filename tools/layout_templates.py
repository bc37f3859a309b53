"""Re-place the nodes of marketplace templates with `hub.graph.place`, editing the files in place.

    $ .venv/bin/python -m tools.layout_templates                    # every shipped template
    $ .venv/bin/python -m tools.layout_templates lead-qualification # one of them

Only each node's `"position": {...}` line changes (and `sourcePosition` / `targetPosition` are
added after it when missing), so a template keeps its hand formatting and its diff shows just
the moves. Run it after adding or rewiring a template, then `python -m tools.gallery`.
"""
import json
import re
import sys

from hub import graph, marketplace

_POSITION = re.compile(r'^(?P<indent>[ \t]*)"position": \{[^}]*\}(?P<comma>,?)[ \t]*$', re.M)


def relayout(text):
    """The template source `text` with every node at the position `hub.graph.place` gives it."""
    document = json.loads(text)
    nodes = document['nodes']
    graph.place(nodes, document['edges'])
    matches = list(_POSITION.finditer(text))
    if len(matches) != len(nodes):
        raise SystemExit('expected one "position" line per node (%d), found %d'
                         % (len(nodes), len(matches)))
    pieces, last = [], 0
    for match, item in zip(matches, nodes):
        indent = match.group('indent')
        line = '%s"position": {"x": %d, "y": %d}' % (indent, item['position']['x'],
                                                      item['position']['y'])
        if '"sourcePosition"' not in text[match.end():match.end() + 200].split('"data"')[0]:
            line += ',\n%s"sourcePosition": "%s",\n%s"targetPosition": "%s"' % (
                indent, graph.SOURCE_POSITION, indent, graph.TARGET_POSITION)
        pieces.append(text[last:match.start()] + line + match.group('comma'))
        last = match.end()
    return ''.join(pieces) + text[last:]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    folder = marketplace.fixtures_dir()
    files = [folder / ('%s.json' % name) for name in argv] or \
        sorted(f for f in folder.iterdir() if f.name.endswith('.json'))
    for file in files:
        text = file.read_text()
        new = relayout(text)
        if new != text:
            file.write_text(new)
            print('re-placed %s' % file.name, file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
