"""Write docs/graphs.md (the graph contract) and the template gallery from the code itself.

    $ .venv/bin/python -m tools.graph_docs            # rewrite docs/graphs.md, docs/templates.md
    $ .venv/bin/python -m tools.graph_docs --check    # exit 1 if any of them is out of date

docs/graphs.md is filled from hub.graph's constants (node types, handles, box size, grid, edge
labels) and docs/templates.md + docs/templates/<stem>.svg from the shipped templates, so a
front end's contract and the curator's pictures cannot drift from what the validator checks.
tests/test_gallery.py runs the check.
"""
import json
import sys
from pathlib import Path

from hub import gallery, graph

DOCS = Path(__file__).resolve().parent.parent / 'docs'
CONTRACT = DOCS / 'graphs.md'
INDEX = DOCS / 'templates.md'
PICTURES = DOCS / 'templates'


def _example():
    nodes = [graph.node('check', 'condition', {'label': 'Hot lead?',
                                               'expression': '{{score.value}} >= 70'}, 440, 50)]
    edges = [graph.edge('check', 'alert', 'e-check-alert', sourceHandle='true',
                        label=graph.BRANCHES['true']),
             graph.edge('check', 'nurture', 'e-check-nurture', sourceHandle='false',
                        label=graph.BRANCHES['false'])]
    return json.dumps({'nodes': nodes, 'edges': edges}, indent=2, ensure_ascii=False)


def contract():
    """The text of docs/graphs.md."""
    types = '\n'.join('| `%s` | %s | %s |' % (
        name, description, ', '.join('`%s`' % key for key in ('label',) + needs))
        for name, (description, needs) in graph.NODES.items())
    registered = ', '.join('%s: %sNode' % (name, name.capitalize()) for name in graph.NODES)
    handles = ', '.join('`"%s"` (label `%s`)' % item for item in graph.BRANCHES.items())
    return f"""# Workflow graphs: the contract for a front end

Generated from `hub/graph.py` by `python -m tools.graph_docs`; do not edit by hand (a test fails
when this page and the validator disagree). Workflows and templates store
[React Flow](https://reactflow.dev) (`@xyflow/react` v12) `nodes` and `edges`; `hub.graph.validate`
checks every graph the marketplace loads, the seeder writes and the operations copy.

## Nodes

```json
{{"id": "score", "type": "agent", "position": {{"x": 220, "y": 50}},
 "sourcePosition": "{graph.SOURCE_POSITION}", "targetPosition": "{graph.TARGET_POSITION}",
 "data": {{"label": "Score lead", "prompt": "..."}}}}
```

- `id`: unique string. `position`: the box's top-left corner in px (numbers).
- `sourcePosition` / `targetPosition`: optional; when present `"{graph.SOURCE_POSITION}"` and
  `"{graph.TARGET_POSITION}"` (graphs run left to right).
- `type`: one of the {len(graph.NODES)} custom types below. Register a component for every one of
  them: React Flow falls back to `default` for an unknown type and then drops every edge that
  names a handle (`Couldn't create edge for source handle id: "true"`). None of them collides
  with React Flow's built-in `input`, `output`, `default` or `group` types; a run ends at `end`.
- `data`: an object with a non-blank `label` (what the box shows) plus the keys of its type;
  other keys are the step's settings and are passed through untouched.

| type | what it does | `data` needs |
|---|---|---|
{types}

```tsx
const nodeTypes = {{ {registered} }};
```

## Handles

Every node is a {graph.NODE_WIDTH} x {graph.NODE_HEIGHT} px box with one target handle on its
left side (id `null`) and one source handle on its right side (id `null`), except:

- `{'`, `'.join(sorted(graph.START_TYPES))}`: no target handle (nothing leads into a trigger);
- `{'`, `'.join(sorted(graph.END_TYPES))}`: no source handle (nothing runs after it);
- `{graph.CONDITION}`: no default source handle but two named ones on its right side, top to
  bottom: {handles}.

## Edges

```json
{_example()}
```

- `id` unique; `source` / `target` name nodes.
- An edge leaving a `{graph.CONDITION}` names its `sourceHandle`, `"true"` or `"false"`, and carries
  the label `"{graph.BRANCHES['true']}"` or `"{graph.BRANCHES['false']}"` to match; every
  condition has at least one edge of each. No other edge names a `sourceHandle`, and no edge
  names a `targetHandle`.
- The graph is a DAG and every node is reachable from a trigger.

## Layout

The layout assumes every node is a **{graph.NODE_WIDTH} x {graph.NODE_HEIGHT} px** box (style
custom nodes to that size) and every edge the straight segment from its source's right middle
to its target's left middle (`type: 'straight'`, or the default bezier, which stays inside the
same corridor for these layouts). The validator requires:

1. every edge runs left to right (`source.x < target.x`);
2. no two boxes overlap;
3. no edge passes through a node that is not one of its ends;
4. no two edges cross (edges may meet at a shared end);
5. a condition's Yes targets are all drawn above its No targets.

`hub.graph.place(nodes, edges)` lays a graph out that way on a grid: column `c` at
`x = c * {graph.COLUMN_PITCH}` ({graph.NODE_WIDTH} px node + {graph.COLUMN_GAP} px gap, the
column is the longest path from the trigger), rows at multiples of `{graph.HALF_ROW}` px (half a
{graph.ROW_PITCH} px row, so a node that merges two branches sits between them), the top row at
`y = 0`. The shipped templates and the seeded workflows use it: at most 9 columns, so
at most {8 * graph.COLUMN_PITCH + graph.NODE_WIDTH} px wide, which fits a 1024 px canvas at React
Flow's default `minZoom` of 0.5. The pictures of every template are in
[templates.md](templates.md).
"""


def outputs():
    """{path: text} of every generated file."""
    rows = gallery.templates()
    files = {CONTRACT: contract(), INDEX: gallery.index(rows, PICTURES.name)}
    for row in rows:
        files[PICTURES / ('%s.svg' % row['stem'])] = gallery.picture(row)
    return files


def stale():
    """Generated files that are missing or differ, and stray pictures, as paths."""
    files = outputs()
    wrong = [path for path, text in files.items()
             if not path.exists() or path.read_text(encoding='utf-8') != text]
    strays = [path for path in sorted(PICTURES.glob('*.svg')) if path not in files] \
        if PICTURES.is_dir() else []
    return wrong + strays


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if '--check' in argv:
        wrong = stale()
        for path in wrong:
            print('%s is out of date: run `python -m tools.graph_docs`' % path, file=sys.stderr)
        return 1 if wrong else 0
    PICTURES.mkdir(parents=True, exist_ok=True)
    files = outputs()
    for path in sorted(PICTURES.glob('*.svg')):
        if path not in files:
            path.unlink()
    for path, text in files.items():
        if not path.exists() or path.read_text(encoding='utf-8') != text:
            path.write_text(text, encoding='utf-8')
            print('wrote %s' % path, file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
