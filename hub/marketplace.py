"""The template marketplace: fixtures/templates/*.json, validated, loaded as system templates.

    >>> from hub import connection, marketplace
    >>> database = connection.bind(connection.open_database(connection.resolve_url()))
    >>> rows = marketplace.read_fixtures()          # validated rows, nothing written yet
    >>> marketplace.load(database)                  # upsert them all, one transaction
    28
    >>> marketplace.load(database)                  # idempotent: nothing changes the second time
    28
    >>> [t['name'] for t in marketplace.list_templates(database, 'SALES')][:1]
    ['Inbound Lead Qualification']

Each file is one template. Its id is `hub.ids.stable_id('template', <file stem>)`, so renaming a
file makes a new template and editing one updates it in place. A file is checked in three
layers, and the first problem found is reported as one line naming the file and the JSON path
of the bad field (`lead-qualification.json: nodes[2].position.x: expected a number`):

1. its shape, against `TEMPLATE_SCHEMA` (a JSON Schema);
2. its graph, with `hub.graph.validate` (ids, types, handles, DAG from a trigger, a layout with
   no edge through a node, no crossing, Yes above No);
3. marketplace rules the graph module does not know: every `{{name}}` names a declared
   variable, every `{{node.field}}` names a node upstream of where it is used, and a condition
   node has exactly one "true" and one "false" outgoing edge (`sourceHandle`).

What a reload writes: the content columns (name, description, category, nodes, edges,
variables, icon, tags, difficulty, estimated_time, is_featured) and the system-template markers
(is_public true, organization_id and created_by NULL), and only for rows whose values differ,
so an unchanged template keeps its `updated_at`. It never touches usage_count, rating or
created_at (the platform owns those: hub.workflows.instantiate_template counts a use as the
owner, tenants cannot write them) and never deletes a template whose file is gone: workflows
may still point at it.

A shipped template's id is predictable, so a tenant can create a row under it before the first
load. A load never adopts such a row (it would publish the tenant's content and counters as a
system template): it refuses, naming the id and the organization holding it, and writes nothing.
"""
import datetime
import json
import re
from collections import defaultdict
from importlib import resources
from pathlib import Path

from hub import graph
from hub.errors import ConfigError, FixtureError, TemplateIdTaken
from hub.ids import stable_id

CATEGORIES = ('SALES', 'SUPPORT', 'MARKETING', 'DATA_PROCESSING', 'AUTOMATION', 'ANALYTICS',
              'CONTENT', 'COMMUNICATION')
DIFFICULTIES = ('BEGINNER', 'INTERMEDIATE', 'ADVANCED', 'EXPERT')

#: Columns a fixture sets; a reload rewrites exactly these (usage_count, rating stay).
CONTENT_COLUMNS = ('name', 'description', 'category', 'nodes', 'edges', 'variables', 'icon',
                   'tags', 'difficulty', 'estimated_time', 'is_public', 'is_featured',
                   'organization_id', 'created_by')

_NOT_BLANK = {'type': 'string', 'minLength': 1, 'pattern': r'\S', 'x-hint': 'must not be blank'}
_IDENT = {'type': 'string', 'pattern': r'^[a-z][a-z0-9_]*$',
          'x-hint': 'expected a snake_case name like lead_score (letters, digits, _)'}

TEMPLATE_SCHEMA = {
    '$schema': 'https://json-schema.org/draft/2020-12/schema',
    'type': 'object',
    'required': ['name', 'description', 'category', 'icon', 'tags', 'difficulty',
                 'estimated_time', 'variables', 'nodes', 'edges'],
    'additionalProperties': False,
    'properties': {
        'name': dict(_NOT_BLANK, maxLength=100),
        'description': _NOT_BLANK,
        'category': {'enum': list(CATEGORIES)},
        'icon': dict(_NOT_BLANK, maxLength=100),
        'tags': {'type': 'array', 'minItems': 1, 'uniqueItems': True,
                 'items': dict(_NOT_BLANK, maxLength=40)},
        'difficulty': {'enum': list(DIFFICULTIES)},
        'estimated_time': {'type': 'integer', 'minimum': 1, 'maximum': 1440},
        'featured': {'type': 'boolean'},
        'variables': {'type': 'object', 'propertyNames': _IDENT},
        'nodes': {
            'type': 'array', 'minItems': 2,
            'items': {
                'type': 'object',
                'required': ['id', 'type', 'position', 'data'],
                'additionalProperties': False,
                'properties': {
                    'id': _IDENT,
                    'type': {'enum': sorted(graph.NODE_TYPES)},
                    'position': {
                        'type': 'object', 'required': ['x', 'y'], 'additionalProperties': False,
                        'properties': {'x': {'type': 'number'}, 'y': {'type': 'number'}}},
                    'sourcePosition': {'enum': [graph.SOURCE_POSITION]},
                    'targetPosition': {'enum': [graph.TARGET_POSITION]},
                    'data': {
                        'type': 'object', 'required': ['label'],
                        'properties': {'label': dict(_NOT_BLANK, maxLength=80)}},
                },
            },
        },
        'edges': {
            'type': 'array', 'minItems': 1,
            'items': {
                'type': 'object',
                'required': ['id', 'source', 'target'],
                'additionalProperties': False,
                'properties': {
                    'id': _NOT_BLANK, 'source': _NOT_BLANK, 'target': _NOT_BLANK,
                    'label': _NOT_BLANK, 'sourceHandle': _NOT_BLANK, 'targetHandle': _NOT_BLANK,
                    'type': _NOT_BLANK, 'animated': {'type': 'boolean'},
                },
            },
        },
    },
}

_TYPE_NAMES = {'number': 'a number', 'integer': 'an integer', 'string': 'a string',
               'object': 'an object', 'array': 'an array', 'boolean': 'true or false',
               'null': 'null'}
_REFERENCE = re.compile(r'{{(.*?)}}')
_REFERENCE_BODY = re.compile(r'^\s*([A-Za-z_]\w*)((?:\.\w+|\[\d+\])*)\s*$')


def fixtures_dir():
    """The shipped templates folder (hub.fixtures/templates), or the repository's copy."""
    try:
        folder = resources.files('hub.fixtures') / 'templates'
        if folder.is_dir():
            return folder
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / 'fixtures' / 'templates'


def read_fixtures(directory=None):
    """Every *.json template in `directory` (default: the shipped ones), validated, as rows.

    Rows carry the table's column names, sorted by file name. The first problem in any file
    raises FixtureError before anything is returned.
    """
    folder = fixtures_dir() if directory is None else Path(directory)
    if folder.exists() and not folder.is_dir():
        raise ConfigError('template folder %s is a file, not a folder; give the folder of '
                          '*.json templates that holds it' % folder)
    if not folder.is_dir():
        raise ConfigError('template folder %s does not exist; give a folder of *.json templates'
                          % folder)
    try:
        files = sorted((f for f in folder.iterdir() if f.name.endswith('.json')),
                       key=lambda f: f.name)
    except OSError as exc:
        raise ConfigError('cannot read the template folder %s (%s); make it readable or give '
                          'another --dir' % (folder, exc.strerror)) from None
    if not files:
        raise ConfigError('no *.json templates in %s; add one per template' % folder)
    rows, names = [], {}
    for file in files:
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise FixtureError('%s: cannot read it (%s); make it readable or move it out of %s'
                               % (file.name, exc.strerror, folder)) from None
        row = _read_one(file.name, raw)
        if row['name'] in names:
            raise FixtureError('%s: name: %r is already used by %s; template names must be unique'
                               % (file.name, row['name'], names[row['name']]))
        names[row['name']] = file.name
        rows.append(row)
    return rows


def _read_one(filename, raw):
    stem = filename[:-len('.json')]
    try:
        document = json.loads(raw.decode('utf-8'))
    except UnicodeDecodeError as exc:
        raise FixtureError('%s: not UTF-8 text (byte %d); save the file as UTF-8'
                           % (filename, exc.start)) from None
    except json.JSONDecodeError as exc:
        raise FixtureError('%s: invalid JSON at line %d column %d: %s'
                           % (filename, exc.lineno, exc.colno, exc.msg)) from None
    problems = _schema_problems(document)
    if not problems:
        problems = graph.validate(document['nodes'], document['edges'])
    if not problems:
        problems = _template_problems(document)
    if problems:
        more = ' (and %d more problem%s)' % (len(problems) - 1, 's' if len(problems) > 2 else '') \
            if len(problems) > 1 else ''
        raise FixtureError('%s: %s%s' % (filename, problems[0], more))
    return {
        'id': stable_id('template', stem),
        'name': document['name'],
        'description': document['description'],
        'category': document['category'],
        'nodes': document['nodes'],
        'edges': document['edges'],
        'variables': document['variables'],
        'icon': document['icon'],
        'tags': document['tags'],
        'difficulty': document['difficulty'],
        'estimated_time': document['estimated_time'],
        'is_public': True,
        'is_featured': document.get('featured', False),
        'organization_id': None,
        'created_by': None,
    }


# -- layer 1: the file's shape ------------------------------------------------------------------

def _validator():
    # Imported here: jsonschema costs ~100 ms and only loading needs it.
    import jsonschema

    global _VALIDATOR
    if _VALIDATOR is None:
        cls = jsonschema.validators.validator_for(TEMPLATE_SCHEMA)
        cls.check_schema(TEMPLATE_SCHEMA)
        _VALIDATOR = cls(TEMPLATE_SCHEMA)
    return _VALIDATOR


_VALIDATOR = None


def json_path(parts):
    """'nodes[2].position.x' from ('nodes', 2, 'position', 'x')."""
    text = ''
    for part in parts:
        text += '[%d]' % part if isinstance(part, int) else ('.' if text else '') + str(part)
    return text


def _document_order(error):
    # Sort errors as they appear in the file: nodes[2] before nodes[10], parents before children.
    return [(0, p, '') if isinstance(p, int) else (1, 0, p) for p in error.absolute_path]


def _schema_problems(document):
    errors = sorted(_validator().iter_errors(document), key=_document_order)
    return [_describe(error) for error in errors]


def _describe(error):
    """One 'path: problem' line for a jsonschema error, worded for a person editing the file."""
    path = list(error.absolute_path)
    kind, expected, value = error.validator, error.validator_value, error.instance
    if kind == 'required':
        missing = [key for key in expected if key not in value]
        path.append(missing[0])
        problem = 'missing; this field is required'
    elif kind == 'additionalProperties':
        allowed = sorted(error.schema.get('properties', {}))
        extra = sorted(key for key in value if key not in allowed)
        path.append(extra[0])
        problem = 'unknown field; allowed: %s' % ', '.join(allowed)
    elif kind == 'type':
        problem = 'expected %s, got %s' % (_TYPE_NAMES.get(expected, expected), _json_type(value))
    elif kind == 'enum':
        problem = 'expected one of %s; got %s' % (', '.join(map(str, expected)), json.dumps(value))
    elif kind == 'pattern' or (kind == 'minLength' and expected == 1):
        problem = error.schema.get('x-hint', 'does not match %s' % expected)
        if kind == 'pattern' and 'name like' in problem:
            problem += '; got %s' % json.dumps(value)
    elif kind == 'maxLength':
        problem = 'too long: %d characters, at most %d' % (len(value), expected)
    elif kind == 'minimum':
        problem = 'must be at least %s; got %s' % (expected, value)
    elif kind == 'maximum':
        problem = 'must be at most %s; got %s' % (expected, value)
    elif kind == 'minItems':
        problem = 'needs at least %d item%s' % (expected, '' if expected == 1 else 's')
    elif kind == 'uniqueItems':
        problem = 'items must be unique'
    elif kind == 'propertyNames':
        problem = 'every name must be snake_case (letters, digits, _)'
    else:
        problem = error.message
    return '%s: %s' % (json_path(path), problem) if path else problem


def _json_type(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    for name, kind in (('null', type(None)), ('a string', str), ('an object', dict),
                       ('an array', list), ('a number', (int, float))):
        if isinstance(value, kind):
            return name
    return type(value).__name__


# -- layer 3: what a template means -----------------------------------------------------------

def _template_problems(document):
    nodes, edges, variables = document['nodes'], document['edges'], document['variables']
    problems = []
    ancestors = _ancestors(nodes, edges)
    for i, item in enumerate(nodes):
        for path, text in _strings(item['data'], ['nodes', i, 'data']):
            for body in _REFERENCE.findall(text):
                problem = _reference_problem(body, item['id'], variables, ancestors)
                if problem:
                    problems.append('%s: %s' % (json_path(path), problem))
    outgoing = defaultdict(list)
    for item in edges:
        outgoing[item['source']].append(item.get('sourceHandle'))
    for i, item in enumerate(nodes):
        if item['type'] == 'condition' and sorted(map(str, outgoing[item['id']])) != ['false', 'true']:
            problems.append('nodes[%d]: condition %r needs two outgoing edges, sourceHandle "true" '
                            'and "false"; got %s' % (i, item['id'], outgoing[item['id']] or 'none'))
    return problems


def _reference_problem(body, node_id, variables, ancestors):
    match = _REFERENCE_BODY.match(body)
    if not match:
        return '{{%s}} is not a reference; use {{variable}} or {{node_id.field}}' % body
    head, rest = match.groups()
    if not rest:
        if head not in variables:
            return ('{{%s}} names no variable; declare it in variables or reference a node '
                    'output as {{node_id.field}}' % head)
    elif head not in ancestors[node_id]:
        return '{{%s}}: %r is not a node upstream of %r' % (body.strip(), head, node_id)
    return None


def _ancestors(nodes, edges):
    parents = defaultdict(set)
    for item in edges:
        parents[item['target']].add(item['source'])
    result = {}
    for node_id in graph.topological_order(nodes, edges):
        found = set()
        for parent in parents[node_id]:
            found.add(parent)
            found |= result[parent]
        result[node_id] = found
    return result


def _strings(value, path):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, path + [key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, path + [index])


# -- the database -------------------------------------------------------------------------------

def load(db, directory=None, timestamp=None):
    """Validate every template, then upsert them all as system templates; returns how many.

    `timestamp` (a datetime) stamps created_at/updated_at of templates inserted now, so a
    seeded database can be byte-identical run to run; by default they get the current time.
    """
    return sync(db, directory, timestamp)['total']


def sync(db, directory=None, timestamp=None):
    """`load`, reporting {'total', 'inserted', 'updated', 'unchanged'}."""
    from peewee import SQL, EXCLUDED, Expression, Tuple

    from hub.migrate import ensure_known
    from hub.models import WorkflowTemplate as T

    rows = read_fixtures(directory)
    ensure_known(db)  # a newer schema may not take rows of this shape
    # One instant for the whole load: a template's created_at equals its first updated_at.
    stamp = timestamp or datetime.datetime.now(datetime.timezone.utc)
    rows = [dict(row, created_at=stamp, updated_at=stamp) for row in rows]
    fields = [getattr(T, name) if name not in ('organization_id', 'created_by')
              else T._meta.columns[name] for name in CONTENT_COLUMNS]
    current = Tuple(*fields)
    incoming = Tuple(*[getattr(EXCLUDED, f.column_name) for f in fields])
    update = {f: getattr(EXCLUDED, f.column_name) for f in fields}
    if timestamp is not None:
        # Otherwise the trigger stamps now(): a change made by a reload is dated when it happened.
        update[T.updated_at] = EXCLUDED.updated_at
    query = (T.insert_many(rows)
             .on_conflict(conflict_target=[T.id], update=update,
                          # Rewriting an equal row would still bump updated_at and bloat the table.
                          # Only system rows are ever updated: never a tenant's (see above).
                          where=(Expression(current, 'IS DISTINCT FROM', incoming)
                                 & T.organization.is_null()))
             .returning(T.id, SQL('(xmax = 0)').alias('inserted'))
             .tuples())
    with db.atomic():
        written = list(query.execute())
        # Checked after the upsert, in its transaction: a row a tenant slipped in meanwhile is
        # seen too, and raising rolls back everything this load wrote.
        taken = (T.select(T.id, T._meta.columns['organization_id'])
                 .where(T.id.in_([row['id'] for row in rows]) & T.organization.is_null(False))
                 .order_by(T.id).tuples().first())
        if taken is not None:
            raise TemplateIdTaken(
                'template id %s (a shipped template) is held by organization %s, not by the '
                'platform; nothing was loaded: delete or rename that row, then load again'
                % taken)
    inserted = sum(1 for _, new in written if new)
    return {'total': len(rows), 'inserted': inserted, 'updated': len(written) - inserted,
            'unchanged': len(rows) - len(written)}


def parse_category(value):
    """The category named by `value` (any case, '-' for '_'), or a ConfigError listing them."""
    name = str(value).strip().upper().replace('-', '_')
    if name not in CATEGORIES:
        raise ConfigError('unknown category %r; use one of %s' % (value, ', '.join(CATEGORIES)))
    return name


def list_templates(db, category=None):
    """Public templates (the marketplace), as dicts of every column, by category then name.

    Featured ones come first within their category; `category` may be any case. `workflows`
    is how many workflows live from each (the seeder writes its workflows without bumping
    usage_count, which `hub.workflows.instantiate_template` does).
    """
    from peewee import fn

    from hub.models import Workflow
    from hub.models import WorkflowTemplate as T

    made = dict(Workflow.select(Workflow.template, fn.COUNT(Workflow.id))
                .where(Workflow.template.is_null(False)).group_by(Workflow.template).tuples())

    query = T.select().where(T.is_public)
    if category is not None:
        query = query.where(T.category == parse_category(category))
    query = query.order_by(T.category, T.is_featured.desc(), T.name, T.id)
    result = []
    for row in query.dicts():
        for key in ('category', 'difficulty'):
            row[key] = getattr(row[key], 'value', row[key])
        # Column names, as read_fixtures gives them (peewee names relations after the object).
        row['organization_id'] = row.pop('organization')
        row['created_by'] = row.pop('creator')
        row['workflows'] = made.get(row['id'], 0)
        result.append(row)
    return result
