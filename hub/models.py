"""Peewee models of the 12 NeuroFlow Hub tables and Python twins of the 8 enum types.

    >>> import hub.connection
    >>> from hub.models import Workflow, WorkflowExecution, ExecutionStatus
    >>> database = hub.connection.bind(hub.connection.open_database(hub.connection.resolve_url()))
    >>> failing = (Workflow.select(Workflow.name)
    ...            .join(WorkflowExecution)
    ...            .where(WorkflowExecution.status == ExecutionStatus.FAILED)
    ...            .distinct())

The migrations (hub/migrations/) create the tables; these models describe the same schema and
`hub db check` proves the two agree. Columns are snake_case; relation fields are named after the
related object (`workflow.organization`, `workflow.creator`) and their raw ids keep the column
name (`workflow.organization_id`, `workflow.created_by`).

Tenant-scoped relations (`TenantForeignKey`) are composite foreign keys in the database:
`(organization_id, team_id) -> agent_teams (organization_id, id)`, so a row can never point at
another organization's parent. Peewee still joins them on the id alone, which is unique.
"""
import datetime
import enum
import json

from peewee import (SQL, BooleanField, CharField, DecimalField, DoubleField, Field,
                    ForeignKeyField, IntegerField, JSONField, Model, NodeList, TextField, Value)
from playhouse.fields import EnumFieldMixin
from playhouse.postgres_ext import ArrayField, DateTimeTZField

from hub.connection import database
from hub.ids import new_id


# -- enums: exactly the platform's (Prisma) labels; the PostgreSQL type names are snake_case ---------------

class AgentStatus(str, enum.Enum):
    IDLE = 'IDLE'
    BUSY = 'BUSY'
    OFFLINE = 'OFFLINE'
    ERROR = 'ERROR'


class TeamStructure(str, enum.Enum):
    HIERARCHICAL = 'HIERARCHICAL'    # a leader delegates to workers
    COLLABORATIVE = 'COLLABORATIVE'  # all agents contribute equally
    PIPELINE = 'PIPELINE'            # sequential processing, in priority order
    DEMOCRATIC = 'DEMOCRATIC'        # voting / consensus


class TeamRole(str, enum.Enum):
    LEADER = 'LEADER'
    WORKER = 'WORKER'
    COORDINATOR = 'COORDINATOR'
    SPECIALIST = 'SPECIALIST'


class ExecutionStatus(str, enum.Enum):
    PENDING = 'PENDING'
    RUNNING = 'RUNNING'
    COMPLETED = 'COMPLETED'
    FAILED = 'FAILED'
    CANCELLED = 'CANCELLED'


class IntegrationStatus(str, enum.Enum):
    CONNECTED = 'CONNECTED'
    DISCONNECTED = 'DISCONNECTED'
    ERROR = 'ERROR'
    TESTING = 'TESTING'


class TemplateCategory(str, enum.Enum):
    SALES = 'SALES'
    SUPPORT = 'SUPPORT'
    MARKETING = 'MARKETING'
    DATA_PROCESSING = 'DATA_PROCESSING'
    AUTOMATION = 'AUTOMATION'
    ANALYTICS = 'ANALYTICS'
    CONTENT = 'CONTENT'
    COMMUNICATION = 'COMMUNICATION'


class DifficultyLevel(str, enum.Enum):
    BEGINNER = 'BEGINNER'
    INTERMEDIATE = 'INTERMEDIATE'
    ADVANCED = 'ADVANCED'
    EXPERT = 'EXPERT'


class MemberRole(str, enum.Enum):
    OWNER = 'OWNER'
    ADMIN = 'ADMIN'
    MEMBER = 'MEMBER'


# -- field types ------------------------------------------------------------------------------

class PgEnumField(EnumFieldMixin, Field):
    """A native PostgreSQL enum column; Python sees the `enum.Enum` member."""

    enum_value_type = str

    def __init__(self, enum_class, type_name, *args, **kwargs):
        self.field_type = type_name
        super().__init__(enum_class, *args, **kwargs)


class JsonbArrayField(Field):
    """A jsonb[] column holding a list of JSON documents (Prisma's `Json[]`)."""

    field_type = 'JSONB[]'

    def db_value(self, value):
        if value is None:
            return None
        # psycopg2 sends a list of str as text[]; the cast makes it jsonb[].
        items = [json.dumps(item, separators=(',', ':')) for item in value]
        return NodeList((Value(items, unpack=False), SQL('::jsonb[]')), glue='')

    def python_value(self, value):
        return value


class TenantForeignKey(ForeignKeyField):
    """A relation that the database enforces as (organization_id, <column>) -> (organization_id, id)."""

    tenant_scoped = True


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


class BaseModel(Model):
    id = TextField(primary_key=True, default=new_id)

    class Meta:
        database = database
        legacy_table_names = False


class Timestamped(BaseModel):
    created_at = DateTimeTZField(default=_now)
    updated_at = DateTimeTZField(default=_now)


# -- identity ---------------------------------------------------------------------------------

class Organization(Timestamped):
    name = CharField(max_length=100)
    slug = CharField(max_length=100, unique=True)

    class Meta:
        table_name = 'organizations'


class User(Timestamped):
    email = CharField(max_length=255, unique=True)
    name = CharField(max_length=100, null=True)
    avatar_url = CharField(max_length=500, null=True)

    class Meta:
        table_name = 'users'


class OrganizationMember(BaseModel):
    organization = ForeignKeyField(Organization, backref='memberships', on_delete='CASCADE',
                                   index=False)
    user = ForeignKeyField(User, backref='memberships', on_delete='CASCADE')
    role = PgEnumField(MemberRole, 'member_role')
    created_at = DateTimeTZField(default=_now)
    # NULL: an invitation, which grants nothing until the invited user accepts it. The database
    # default (migration 0008) makes a trusted writer's plain insert an accepted member; a
    # tenant's insert for anyone else is an invitation whatever it says (a trigger).
    accepted_at = DateTimeTZField(null=True, default=_now)

    class Meta:
        table_name = 'organization_members'
        indexes = ((('organization', 'user'), True),)


# -- the platform's nine tables ---------------------------------------------------------------

class WorkflowTemplate(Timestamped):
    name = CharField(max_length=100)
    description = TextField()
    category = PgEnumField(TemplateCategory, 'template_category', index=True)
    nodes = JSONField()
    edges = JSONField()
    variables = JSONField(null=True)
    icon = CharField(max_length=100, null=True)
    tags = ArrayField(TextField, default=list, index=False)
    difficulty = PgEnumField(DifficultyLevel, 'difficulty_level', default=DifficultyLevel.BEGINNER)
    estimated_time = IntegerField(null=True)  # setup time in minutes
    usage_count = IntegerField(default=0)
    rating = DoubleField(null=True)  # 0..5
    is_public = BooleanField(default=False, index=True)
    is_featured = BooleanField(default=False, index=True)
    # NULL for system templates (the marketplace), visible to every tenant when public.
    organization = ForeignKeyField(Organization, null=True, backref='workflow_templates',
                                   on_delete='CASCADE')
    creator = ForeignKeyField(User, null=True, column_name='created_by',
                              object_id_name='created_by', backref='workflow_templates',
                              on_delete='SET NULL')

    class Meta:
        table_name = 'workflow_templates'


class Workflow(Timestamped):
    name = CharField(max_length=100)
    description = TextField(null=True)
    nodes = JSONField()  # React Flow nodes
    edges = JSONField()  # React Flow edges
    variables = JSONField(null=True)
    is_active = BooleanField(default=True, index=True)
    version = CharField(max_length=20, default='1.0.0')
    tags = ArrayField(TextField, default=list, index=False)
    execution_count = IntegerField(default=0)
    last_executed = DateTimeTZField(null=True)
    template = ForeignKeyField(WorkflowTemplate, null=True, backref='workflows',
                               on_delete='SET NULL')
    organization = ForeignKeyField(Organization, backref='workflows', on_delete='CASCADE',
                                   index=False)
    creator = ForeignKeyField(User, column_name='created_by', object_id_name='created_by',
                              backref='workflows', on_delete='CASCADE')

    class Meta:
        table_name = 'workflows'
        indexes = ((('organization', 'id'), True), (('created_at',), False))


class AIAgent(Timestamped):
    name = CharField(max_length=100)
    description = TextField(null=True)
    avatar = CharField(max_length=500, null=True)
    personality = JSONField()   # traits, tone, style
    model_config = JSONField()  # provider, model, parameters
    capabilities = ArrayField(TextField, default=list, index=False)  # tool names
    memory = JSONField()
    execution_count = IntegerField(default=0)
    success_rate = DoubleField(null=True)       # 0..1
    avg_response_time = DoubleField(null=True)  # milliseconds
    is_active = BooleanField(default=True, index=True)
    status = PgEnumField(AgentStatus, 'agent_status', default=AgentStatus.IDLE, index=True)
    organization = ForeignKeyField(Organization, backref='ai_agents', on_delete='CASCADE',
                                   index=False)
    creator = ForeignKeyField(User, column_name='created_by', object_id_name='created_by',
                              backref='ai_agents', on_delete='CASCADE')

    class Meta:
        table_name = 'ai_agents'
        indexes = ((('organization', 'id'), True),)


class AgentTeam(Timestamped):
    name = CharField(max_length=100)
    description = TextField(null=True)
    structure = PgEnumField(TeamStructure, 'team_structure', index=True)
    coordination = JSONField()
    execution_count = IntegerField(default=0)
    success_rate = DoubleField(null=True)
    organization = ForeignKeyField(Organization, backref='agent_teams', on_delete='CASCADE',
                                   index=False)
    creator = ForeignKeyField(User, column_name='created_by', object_id_name='created_by',
                              backref='agent_teams', on_delete='CASCADE')

    class Meta:
        table_name = 'agent_teams'
        indexes = ((('organization', 'id'), True),)


class TeamMember(BaseModel):
    organization = ForeignKeyField(Organization, backref='team_members', on_delete='CASCADE')
    team = TenantForeignKey(AgentTeam, backref='members', on_delete='CASCADE', index=False)
    agent = TenantForeignKey(AIAgent, backref='team_members', on_delete='CASCADE')
    role = PgEnumField(TeamRole, 'team_role')
    priority = IntegerField(default=0)  # execution order
    joined_at = DateTimeTZField(default=_now)

    class Meta:
        table_name = 'team_members'
        indexes = ((('team', 'agent'), True),)


class WorkflowExecution(BaseModel):
    organization = ForeignKeyField(Organization, backref='workflow_executions',
                                   on_delete='CASCADE', index=False)
    # Indexed with started_at (Meta.indexes, migration 0006): one workflow's latest executions.
    workflow = TenantForeignKey(Workflow, backref='executions', on_delete='CASCADE', index=False)
    status = PgEnumField(ExecutionStatus, 'execution_status', default=ExecutionStatus.PENDING,
                         index=True)
    # The standalone started_at index is BRIN (migration 0006: no ordered path that walks past
    # other tenants). Not index_type='BRIN' here: peewee would give it to the composite
    # (organization, started_at) b-tree of Meta.indexes too. `hub db check` compares columns.
    started_at = DateTimeTZField(default=_now, index=True)  # BRIN: migration 0006
    completed_at = DateTimeTZField(null=True)
    duration = IntegerField(null=True)  # milliseconds
    input = JSONField(null=True)
    output = JSONField(null=True)
    error = TextField(null=True)
    logs = JsonbArrayField(default=list)
    nodes_executed = IntegerField(default=0)
    tokens_used = IntegerField(default=0)
    cost = DecimalField(max_digits=12, decimal_places=2, default=0)  # cents

    class Meta:
        table_name = 'workflow_executions'
        indexes = ((('organization', 'id'), True),
                   (('organization', 'started_at'), False),
                   (('organization', 'status'), False),
                   (('workflow', 'started_at'), False))


class AgentExecution(BaseModel):
    organization = ForeignKeyField(Organization, backref='agent_executions',
                                   on_delete='CASCADE', index=False)
    agent = TenantForeignKey(AIAgent, backref='executions', on_delete='CASCADE')
    # Deleting the workflow execution clears only this column; organization_id stays.
    workflow_execution = TenantForeignKey(WorkflowExecution, null=True,
                                          backref='agent_executions',
                                          on_delete='SET NULL (workflow_execution_id)')
    task = TextField()
    input = JSONField()
    output = JSONField(null=True)
    status = PgEnumField(ExecutionStatus, 'execution_status', default=ExecutionStatus.PENDING,
                         index=True)
    started_at = DateTimeTZField(default=_now, index=True)  # BRIN: migration 0006
    completed_at = DateTimeTZField(null=True)
    duration = IntegerField(null=True)
    tokens_used = IntegerField(default=0)
    cost = DecimalField(max_digits=12, decimal_places=2, default=0)
    model = CharField(max_length=100, null=True)    # gpt-4o, claude-sonnet-4, ...
    provider = CharField(max_length=50, null=True)  # openai, anthropic, ...

    class Meta:
        table_name = 'agent_executions'
        indexes = ((('organization', 'started_at'), False),)


class TeamExecution(BaseModel):
    organization = ForeignKeyField(Organization, backref='team_executions',
                                   on_delete='CASCADE', index=False)
    team = TenantForeignKey(AgentTeam, backref='executions', on_delete='CASCADE')
    task = TextField()
    pattern = PgEnumField(TeamStructure, 'team_structure')
    input = JSONField()
    output = JSONField(null=True)
    status = PgEnumField(ExecutionStatus, 'execution_status', default=ExecutionStatus.PENDING,
                         index=True)
    started_at = DateTimeTZField(default=_now, index=True)  # BRIN: migration 0006
    completed_at = DateTimeTZField(null=True)
    duration = IntegerField(null=True)
    agent_results = JsonbArrayField(default=list)  # one entry per participating member

    class Meta:
        table_name = 'team_executions'
        indexes = ((('organization', 'started_at'), False),)


class Integration(Timestamped):
    name = CharField(max_length=100)
    provider = CharField(max_length=50, index=True)  # slack, gmail, webhook, http, ...
    credentials = JSONField()  # Fernet-encrypted by the application, never plaintext
    config = JSONField()
    is_active = BooleanField(default=True)
    last_tested = DateTimeTZField(null=True)
    status = PgEnumField(IntegrationStatus, 'integration_status',
                         default=IntegrationStatus.DISCONNECTED, index=True)
    organization = ForeignKeyField(Organization, backref='integrations', on_delete='CASCADE')
    creator = ForeignKeyField(User, column_name='created_by', object_id_name='created_by',
                              backref='integrations', on_delete='CASCADE')

    class Meta:
        table_name = 'integrations'


#: Every model, parents before children (the order to create, load or dump them).
MODELS = (Organization, User, OrganizationMember, WorkflowTemplate, Workflow, AIAgent, AgentTeam,
          TeamMember, WorkflowExecution, AgentExecution, TeamExecution, Integration)

#: Every enum with its PostgreSQL type name.
ENUMS = {'agent_status': AgentStatus, 'team_structure': TeamStructure, 'team_role': TeamRole,
         'execution_status': ExecutionStatus, 'integration_status': IntegrationStatus,
         'template_category': TemplateCategory, 'difficulty_level': DifficultyLevel,
         'member_role': MemberRole}

#: Tables that belong to one organization (organization_id NOT NULL).
TENANT_MODELS = tuple(m for m in MODELS
                      if 'organization' in m._meta.fields
                      and not m._meta.fields['organization'].null)


def dependency_order(models=None):
    """`models` (by default every one of MODELS) with parents before children: a model comes
    after every model its foreign keys reference (a self-reference aside); ties keep their
    order. The order to create, load or copy tables in, read from the declarations."""
    pending = list(MODELS if models is None else models)
    done, ordered = set(), []
    while pending:
        ready = next((m for m in pending if all(
            f.rel_model in done or f.rel_model is m or f.rel_model not in pending
            for f in m._meta.refs)), pending[0])  # a cycle: keep the given order
        ordered.append(ready)
        done.add(ready)
        pending.remove(ready)
    return tuple(ordered)


def model_for(table):
    """The model of MODELS whose table is `table`, or None."""
    return next((m for m in MODELS if m._meta.table_name == table), None)


def declared_indexes(model):
    """{(columns, unique)} for the primary key, unique and indexed fields, and Meta.indexes:
    the keys and indexes `model` has on a single node (hub.schema.expected_indexes)."""
    meta = model._meta
    found = {((meta.primary_key.column_name,), True)}
    for field in meta.sorted_fields:
        if field.unique:
            found.add(((field.column_name,), True))
        elif field.index and not field.primary_key:
            found.add(((field.column_name,), False))
    for names, unique in meta.indexes:
        found.add((tuple(meta.fields[n].column_name if n in meta.fields else n for n in names),
                   unique))
    return found
