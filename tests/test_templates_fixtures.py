"""The marketplace files themselves: every one valid and realistic; malformed ones rejected clearly.

No database here: read_fixtures validates without one.
"""
import collections
import copy
import json
import re

import pytest

from hub import graph, marketplace
from hub.errors import HubError
from hub.ids import stable_id

FOLDER = marketplace.fixtures_dir()
FILES = sorted(f for f in FOLDER.iterdir() if f.name.endswith('.json'))
DOCS = {f.name[:-5]: json.loads(f.read_text()) for f in FILES}


@pytest.fixture(scope='module')
def rows():
    return marketplace.read_fixtures()


def test_every_shipped_file_validates(rows):
    assert [r['id'] for r in rows] == [stable_id('template', stem) for stem in sorted(DOCS)]
    for row in rows:
        assert graph.validate(row['nodes'], row['edges']) == []


def test_at_least_24_templates_three_per_category(rows):
    per_category = collections.Counter(r['category'] for r in rows)
    assert len(rows) >= 24
    assert set(per_category) == set(marketplace.CATEGORIES)
    assert min(per_category.values()) >= 3, per_category


def test_ids_are_stable_and_unique(rows):
    # Pinned: an id that changes between releases orphans every workflow made from the template.
    assert stable_id('template', 'lead-qualification') == 'cuth0pzewq6kcd957ltq0w7zn'
    assert len({r['id'] for r in rows}) == len(rows)
    assert marketplace.read_fixtures() == rows


def test_rows_are_system_templates(rows):
    for row in rows:
        assert row['organization_id'] is None and row['created_by'] is None
        assert row['is_public'] is True
    featured = [r['name'] for r in rows if r['is_featured']]
    assert 3 <= len(featured) <= len(rows) // 3


@pytest.mark.parametrize('stem', sorted(DOCS))
def test_each_template_is_a_real_workflow(stem):
    doc = DOCS[stem]
    nodes, edges = doc['nodes'], doc['edges']
    types = [n['type'] for n in nodes]
    order = graph.topological_order(nodes, edges)
    assert nodes[0]['type'] == 'trigger' and order[0] == nodes[0]['id']
    assert len(nodes) >= 5, 'too small to be useful'
    assert {'agent', 'team'} & set(types), 'no AI step'
    assert len(set(types)) >= 3, 'too uniform'
    assert len(doc['description']) >= 80 and doc['description'].endswith('.')
    assert doc['variables'], 'nothing to configure'
    assert 1 <= len(doc['icon']) <= 100 and len(doc['tags']) >= 3
    for item in nodes:
        if item['type'] == 'agent':
            assert {'provider', 'model', 'instructions'} <= set(item['data']), item['id']
        if item['type'] == 'team':
            assert item['data']['structure'] in ('HIERARCHICAL', 'COLLABORATIVE', 'PIPELINE',
                                                 'DEMOCRATIC')
            assert len(item['data']['members']) >= 2
        if item['type'] == 'slack':
            data = item['data']
            assert (data.get('channel') or data.get('channels')) and data['message'], item['id']
    used = set(re.findall(r'{{\s*(\w+)\s*}}', json.dumps(nodes)))
    assert set(doc['variables']) <= used, 'declared but unused: %s' % (set(doc['variables']) - used)


def test_the_set_is_varied(rows):
    assert {r['difficulty'] for r in rows} == set(marketplace.DIFFICULTIES)
    branching = [r for r in rows if any(n['type'] == 'condition' for n in r['nodes'])]
    assert len(branching) >= len(rows) // 2
    assert len({r['icon'] for r in rows}) == len(rows)
    assert all(5 <= r['estimated_time'] <= 120 for r in rows)


def test_the_shipped_folder_is_found_through_the_package():
    assert FOLDER.is_dir() and FILES
    assert str(FOLDER).endswith('templates')


# -- malformed files ------------------------------------------------------------------------------

GOOD = DOCS['lead-qualification']


def _broken(change):
    doc = copy.deepcopy(GOOD)
    change(doc)
    return doc


def _set(path, value):
    def change(doc):
        target = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return change


def _delete(key):
    return lambda doc: doc.pop(key)


def _cycle(doc):
    doc['edges'].append({'id': 'back', 'source': 'notify', 'target': 'enrich'})


def _one_branch(doc):
    doc['edges'] = [e for e in doc['edges'] if e.get('sourceHandle') != 'false']
    doc['nodes'] = [n for n in doc['nodes'] if n['id'] not in ('nurture', 'done_nurture')]
    doc['edges'] = [e for e in doc['edges'] if e['target'] not in ('nurture', 'done_nurture')]


CASES = [
    (_set(['nodes', 2, 'position', 'x'], '560'), 'nodes[2].position.x: expected a number, got a string'),
    (_delete('description'), 'description: missing; this field is required'),
    (_set(['category'], 'FINANCE'), 'category: expected one of SALES, SUPPORT, MARKETING, '
     'DATA_PROCESSING, AUTOMATION, ANALYTICS, CONTENT, COMMUNICATION; got "FINANCE"'),
    (_set(['name'], 'x' * 101), 'name: too long: 101 characters, at most 100'),
    (_set(['name'], '   '), 'name: must not be blank'),
    (_set(['estimated_time'], 0), 'estimated_time: must be at least 1; got 0'),
    (_set(['ratings'], 5), 'ratings: unknown field; allowed: category, description, difficulty, '
     'edges, estimated_time, featured, icon, name, nodes, tags, variables'),
    (_set(['nodes', 1, 'type'], 'ftp'), 'nodes[1].type: expected one of %s; got "ftp"'
     % ', '.join(sorted(graph.NODE_TYPES))),
    (_set(['nodes', 3, 'id'], 'Is Hot'), 'nodes[3].id: expected a snake_case name like lead_score '
     '(letters, digits, _); got "Is Hot"'),
    (_set(['nodes', 4, 'data'], {'provider': 'hubspot'}), 'nodes[4].data.label: missing; this '
     'field is required'),
    (_set(['edges', 0, 'target'], 'enrichh'), "edges[0].target: no node has id 'enrichh'"),
    (_cycle, 'edges: the graph has a cycle; a workflow must be a DAG'),
    (_set(['nodes', 1, 'position', 'x'], 0), "edges[0]: 'form' is not left of 'enrich'; lay the "
     "graph out left to right (and 1 more problem)"),
    (_set(['nodes', 6, 'data', 'channel'], '{{channel}}'), 'nodes[6].data.channel: {{channel}} '
     'names no variable; declare it in variables or reference a node output as {{node_id.field}}'),
    (_set(['nodes', 1, 'data', 'url'], 'https://x.test/{{score.score}}'), "nodes[1].data.url: "
     "{{score.score}}: 'score' is not a node upstream of 'enrich'"),
    (_set(['nodes', 7, 'data', 'result'], '{{ score.score | round }}'), 'nodes[7].data.result: '
     '{{ score.score | round }} is not a reference; use {{variable}} or {{node_id.field}}'),
    (_one_branch, "nodes[3]: condition 'is_hot' has no 'false' edge; connect its No branch"),
]


@pytest.mark.parametrize('change, message', CASES)
def test_a_malformed_file_names_itself_and_the_bad_field(tmp_path, change, message):
    (tmp_path / 'a-good-one.json').write_text(json.dumps(GOOD))
    (tmp_path / 'lead-qualification.json').write_text(json.dumps(_broken(change)))
    with pytest.raises(marketplace.FixtureError) as caught:
        marketplace.read_fixtures(tmp_path)
    assert str(caught.value) == 'lead-qualification.json: ' + message
    assert '\n' not in str(caught.value)


def test_invalid_json_names_line_and_column(tmp_path):
    (tmp_path / 'broken.json').write_text('{\n  "name": "x",\n  "nodes": [,]\n}\n')
    with pytest.raises(marketplace.FixtureError, match=r'^broken\.json: invalid JSON at line 3 '
                                                        r'column 13: Expecting value$'):
        marketplace.read_fixtures(tmp_path)


def test_two_files_with_one_name_are_rejected(tmp_path):
    for stem in ('first', 'second'):
        (tmp_path / ('%s.json' % stem)).write_text(json.dumps(GOOD))
    with pytest.raises(marketplace.FixtureError, match="^second.json: name: 'Inbound Lead "
                                                        "Qualification' is already used by "
                                                        "first.json"):
        marketplace.read_fixtures(tmp_path)


def test_an_empty_or_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(HubError, match='no \\*.json templates in') as caught:
        marketplace.read_fixtures(tmp_path)
    assert caught.value.exit_code == 2
    with pytest.raises(HubError, match='does not exist') as caught:
        marketplace.read_fixtures(tmp_path / 'nope')
    assert caught.value.exit_code == 2


def test_category_names_are_forgiving_but_checked():
    assert marketplace.parse_category('data-processing') == 'DATA_PROCESSING'
    assert marketplace.parse_category(' Sales ') == 'SALES'
    with pytest.raises(HubError, match="^unknown category 'finance'; use one of SALES, ") as caught:
        marketplace.parse_category('finance')
    assert caught.value.exit_code == 2
