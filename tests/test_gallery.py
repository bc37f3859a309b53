"""The gallery (docs/templates.md + one SVG per template) and docs/graphs.md are generated and
current, the pictures show what is stored, and `hub templates show` summarizes one template."""
import json
import re
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from hub import gallery, graph, marketplace
from hub.cli.main import cli
from tools import graph_docs

SVG = '{http://www.w3.org/2000/svg}'


def test_generated_docs_are_current():
    assert graph_docs.stale() == [], 'run `python -m tools.graph_docs`'


def test_a_moved_node_makes_the_gallery_stale(tmp_path, monkeypatch):
    for item in marketplace.fixtures_dir().iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    doc = json.loads((tmp_path / 'proposal-generator.json').read_text())
    doc['nodes'][-1]['position']['y'] += graph.ROW_PITCH * 3
    (tmp_path / 'proposal-generator.json').write_text(json.dumps(doc))
    monkeypatch.setattr(marketplace, 'fixtures_dir', lambda: tmp_path)
    assert graph_docs.stale() == [graph_docs.PICTURES / 'proposal-generator.svg']
    assert graph_docs.main(['--check']) == 1


def test_the_gallery_has_one_current_picture_per_template():
    rows = gallery.templates()
    index = graph_docs.INDEX.read_text()
    assert sorted(p.stem for p in graph_docs.PICTURES.glob('*.svg')) == [r['stem'] for r in rows]
    for row in rows:
        assert '![%s](templates/%s.svg)' % (row['name'], row['stem']) in index


@pytest.mark.parametrize('stem', ['proposal-generator', 'support-ticket-triage'])
def test_a_picture_draws_the_stored_positions(stem):
    row = gallery.find(stem)
    root = ET.fromstring(gallery.picture(row))
    boxes = [r for r in root.iter(SVG + 'rect') if r.get('width') == str(graph.NODE_WIDTH)]
    assert sorted((float(r.get('x')), float(r.get('y'))) for r in boxes) == sorted(
        (n['position']['x'], n['position']['y']) for n in row['nodes'])
    lines = root.findall('.//%sline' % SVG)
    by_id = {n['id']: n for n in row['nodes']}
    assert sorted((float(l.get('x1')), float(l.get('y1')), float(l.get('x2')), float(l.get('y2')))
                  for l in lines) == sorted(
        (*graph._segment(by_id[e['source']], by_id[e['target']])[0],
         *graph._segment(by_id[e['source']], by_id[e['target']])[1]) for e in row['edges'])
    texts = [t.text for t in root.iter(SVG + 'text')]
    assert texts.count('Yes') == texts.count('No') == sum(
        1 for n in row['nodes'] if n['type'] == graph.CONDITION)
    for item in row['nodes']:
        assert item['type'] in texts


def test_the_contract_names_every_type_and_the_box():
    text = graph_docs.CONTRACT.read_text()
    for name in graph.NODE_TYPES:
        assert '| `%s` |' % name in text
    assert '%d x %d px' % (graph.NODE_WIDTH, graph.NODE_HEIGHT) in text
    assert 'x = c * %d' % graph.COLUMN_PITCH in text
    assert '`"true"` (label `Yes`), `"false"` (label `No`)' in text


def _show(*args):
    result = CliRunner().invoke(cli, ['templates', 'show'] + list(args))
    return result.exit_code, result.stdout, result.stderr


def test_show_prints_the_summary_and_writes_the_svg(tmp_path):
    target = tmp_path / 'p.svg'
    code, out, err = _show('Sales Proposal Generator', '--svg', str(target))
    assert code == 0, err
    row = gallery.find('proposal-generator')
    lines = out.splitlines()
    assert lines[0] == 'Sales Proposal Generator (proposal-generator)'
    assert 'category    SALES' in lines and 'difficulty  ADVANCED, about 40 min' in lines
    assert 'graph       9 nodes, 10 edges; 8 columns, 1700 x 160 px' in lines
    assert lines[4].startswith('variables   deal_desk_channel=#deal-desk, max_discount_percent=15')
    listed = [re.split(r'\s+', line.strip())[1] for line in lines[6:]]
    assert listed == graph.topological_order(row['nodes'], row['edges'])
    assert "[Yes -> deal_desk, No -> doc]" in out
    assert target.read_text() == gallery.picture(row)
    assert err == 'wrote %s\n' % target


def test_show_an_unknown_name_lists_close_matches():
    code, out, err = _show('proposl-generatr')
    assert (code, out) == (2, '')
    assert err == "Error: unknown template 'proposl-generatr'; did you mean: proposal-generator?\n"
    code, _, err = _show('zzzz')
    assert code == 2 and len(err.splitlines()) == 1 and 'no name is close' in err


def test_show_an_unwritable_svg_path_is_a_one_line_error(tmp_path):
    code, out, err = _show('lead-qualification', '--svg', str(tmp_path / 'missing' / 'x.svg'))
    assert (code, out) == (2, '')
    assert err.startswith('Error: cannot write ') and len(err.splitlines()) == 1
