"""Rows for tests, inserted through raw SQL with only the required columns."""
import decimal

from peewee import (BooleanField, DateTimeField, DecimalField, FloatField, ForeignKeyField,
                    IntegerField, JSONField)
from playhouse.postgres_ext import ArrayField, BinaryJSONField, DateTimeTZField

from hub import models
from hub.ids import new_id
from hub.models import JsonbArrayField, PgEnumField

#: Literals for required columns whose CHECK wants a shape; every other one gets one by type.
SAMPLES = {'email': "'ada@example.com'", 'slug': "'acme'", 'nodes': "'[]'", 'edges': "'[]'"}
#: The name a row of each table has in make_tenant's ids (the placeholder a reference to it gets).
ID_NAMES = {'organizations': 'org', 'users': 'user', 'workflows': 'workflow', 'ai_agents': 'agent',
            'agent_teams': 'team', 'workflow_executions': 'execution',
            'workflow_templates': 'template'}


def _literal(field):
    """An SQL literal (a str.format template: {org} is a placeholder) for a required column."""
    if isinstance(field, ForeignKeyField):
        target = field.rel_model._meta.table_name
        return '{%s}' % ID_NAMES.get(target, target)
    if field.column_name in SAMPLES:
        return SAMPLES[field.column_name]
    if isinstance(field, PgEnumField):
        return "'%s'" % list(field.enum_class)[0].value
    if isinstance(field, (JSONField, BinaryJSONField)):
        return "'{{}}'"
    if isinstance(field, (ArrayField, JsonbArrayField)):
        return "'{{}}'"
    if isinstance(field, BooleanField):
        return 'false'
    if isinstance(field, (IntegerField, FloatField, DecimalField)):
        return '0'
    if isinstance(field, (DateTimeField, DateTimeTZField)):
        return 'now()'
    return "'%s'" % field.column_name[0].upper()


def required(model):
    """{column: literal} for the columns the model requires: NOT NULL without a default."""
    return {f.column_name: _literal(f) for f in model._meta.sorted_fields
            if not f.primary_key and not f.null and f.default is None}


# The columns each table needs and nothing more (everything else has a default or is nullable),
# as the models say; tests/test_constraints.py checks the database agrees.
REQUIRED = {m._meta.table_name: required(m) for m in models.MODELS}

# What those minimal rows must read back, from the database's own defaults.
DEFAULTS = {
    'workflow_templates': {'tags': [], 'difficulty': 'BEGINNER', 'usage_count': 0,
                           'is_public': False, 'is_featured': False, 'organization_id': None},
    'workflows': {'is_active': True, 'version': '1.0.0', 'tags': [], 'execution_count': 0,
                  'last_executed': None, 'template_id': None},
    'ai_agents': {'capabilities': [], 'execution_count': 0, 'is_active': True, 'status': 'IDLE',
                  'success_rate': None},
    'agent_teams': {'execution_count': 0, 'success_rate': None},
    'team_members': {'priority': 0},
    'workflow_executions': {'status': 'PENDING', 'logs': [], 'nodes_executed': 0,
                            'tokens_used': 0, 'cost': decimal.Decimal('0'), 'completed_at': None},
    'agent_executions': {'status': 'PENDING', 'tokens_used': 0, 'cost': decimal.Decimal('0'),
                         'workflow_execution_id': None},
    'team_executions': {'status': 'PENDING', 'agent_results': []},
    'integrations': {'is_active': True, 'status': 'DISCONNECTED', 'last_tested': None},
}


def insert(database, table, **values):
    """INSERT through raw SQL with only `values`; returns the new id."""
    row_id = new_id()
    columns = ['id'] + list(values)
    database.execute_sql('INSERT INTO %s (%s) VALUES (%s)' % (
        table, ', '.join(columns), ', '.join(['%s'] + [v for v in values.values()])), (row_id,))
    return row_id


def minimal(database, table, ids, **overrides):
    """A row of `table` with only its required columns, references from `ids` (make_tenant's)."""
    values = {k: v.format(**{key: "'%s'" % val for key, val in ids.items()})
              for k, v in required(models.model_for(table)).items()}
    values.update(overrides)
    return insert(database, table, **values)


def fetch(database, table, row_id):
    cursor = database.execute_sql('SELECT * FROM %s WHERE id = %%s' % table, (row_id,))
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone()))


def make_tenant(database, slug):
    """An organization with one row in every table; returns the ids by kind."""
    ids = {}
    ids['org'] = minimal(database, 'organizations', ids, slug="'%s'" % slug, name="'Acme'")
    ids['user'] = minimal(database, 'users', ids, email="'owner@%s.example'" % slug)
    minimal(database, 'organization_members', ids, accepted_at='now()')
    ids['workflow'] = minimal(database, 'workflows', ids)
    ids['agent'] = minimal(database, 'ai_agents', ids)
    ids['team'] = minimal(database, 'agent_teams', ids)
    minimal(database, 'team_members', ids)
    ids['execution'] = minimal(database, 'workflow_executions', ids)
    ids['agent_execution'] = minimal(database, 'agent_executions', ids,
                                     workflow_execution_id="'%s'" % ids['execution'])
    minimal(database, 'team_executions', ids)
    minimal(database, 'integrations', ids)
    ids['template'] = minimal(database, 'workflow_templates', ids,
                              organization_id="'%s'" % ids['org'])
    return ids
