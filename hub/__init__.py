"""NeuroFlow Hub data layer: models, migrations, row-level security and a seeder for PostgreSQL.

    import hub
    from hub import Workflow, WorkflowExecution, ExecutionStatus

    with hub.connect() as db:        # --database-url > DATABASE_URL > embedded ./.hub, as the CLI
        failing = (Workflow.select().join(WorkflowExecution)
                   .where(WorkflowExecution.status == ExecutionStatus.FAILED).distinct())
        for workflow in failing:
            print(workflow.organization.name, workflow.name)

Names are loaded on first use (PEP 562), so `import hub` and `hub --help` stay fast.
"""
import importlib

__version__ = '0.1.0'

# public name -> module that defines it
_EXPORTS = {
    'connect': 'hub.connection',
    'HubError': 'hub.errors', 'ConfigError': 'hub.errors', 'DatabaseUnavailable': 'hub.errors',
    'MigrationError': 'hub.errors', 'KeyMismatch': 'hub.errors', 'ShellError': 'hub.errors',
    'SnapshotError': 'hub.errors', 'TemplateIdTaken': 'hub.errors',
    'DatabaseNewer': 'hub.errors', 'LockConflict': 'hub.errors',
    'GraphError': 'hub.errors', 'SchemaDrift': 'hub.errors', 'RlsError': 'hub.errors',
    'FixtureError': 'hub.errors', 'RuleViolation': 'hub.errors',
}
_MODELS = ('Organization', 'User', 'OrganizationMember', 'WorkflowTemplate', 'Workflow',
           'AIAgent', 'AgentTeam', 'TeamMember', 'WorkflowExecution', 'AgentExecution',
           'TeamExecution', 'Integration', 'AgentStatus', 'TeamStructure', 'TeamRole',
           'ExecutionStatus', 'IntegrationStatus', 'TemplateCategory', 'DifficultyLevel',
           'MemberRole', 'MODELS')
_EXPORTS.update(dict.fromkeys(_MODELS, 'hub.models'))

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError('module hub has no attribute %r' % name)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
