"""Rows for tests, inserted through raw SQL with only the required columns."""
import decimal

from hub.ids import new_id

# The columns each table needs and nothing more (everything else has a default or is nullable).
REQUIRED = {
    'organizations': {'name': "'Acme'", 'slug': "'acme'"},
    'users': {'email': "'ada@example.com'"},
    'organization_members': {'organization_id': '{org}', 'user_id': '{user}', 'role': "'OWNER'"},
    'workflow_templates': {'name': "'T'", 'description': "'d'", 'category': "'SALES'",
                           'nodes': "'[]'", 'edges': "'[]'"},
    'workflows': {'name': "'W'", 'nodes': "'[]'", 'edges': "'[]'", 'organization_id': '{org}',
                  'created_by': '{user}'},
    'ai_agents': {'name': "'A'", 'personality': "'{{}}'", 'model_config': "'{{}}'",
                  'memory': "'{{}}'", 'organization_id': '{org}', 'created_by': '{user}'},
    'agent_teams': {'name': "'T'", 'structure': "'PIPELINE'", 'coordination': "'{{}}'",
                    'organization_id': '{org}', 'created_by': '{user}'},
    'team_members': {'organization_id': '{org}', 'team_id': '{team}', 'agent_id': '{agent}',
                     'role': "'WORKER'"},
    'workflow_executions': {'organization_id': '{org}', 'workflow_id': '{workflow}'},
    'agent_executions': {'organization_id': '{org}', 'agent_id': '{agent}', 'task': "'t'",
                         'input': "'{{}}'"},
    'team_executions': {'organization_id': '{org}', 'team_id': '{team}', 'task': "'t'",
                        'pattern': "'PIPELINE'", 'input': "'{{}}'"},
    'integrations': {'name': "'I'", 'provider': "'slack'", 'credentials': "'{{}}'",
                     'config': "'{{}}'", 'organization_id': '{org}', 'created_by': '{user}'},
}

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
    values = {k: v.format(**{key: "'%s'" % val for key, val in ids.items()})
              for k, v in REQUIRED[table].items()}
    values.update(overrides)
    return insert(database, table, **values)


def fetch(database, table, row_id):
    cursor = database.execute_sql('SELECT * FROM %s WHERE id = %%s' % table, (row_id,))
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone()))


def make_tenant(database, slug):
    """An organization with one row in every table; returns the ids by kind."""
    ids = {}
    ids['org'] = minimal(database, 'organizations', ids, slug="'%s'" % slug)
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
