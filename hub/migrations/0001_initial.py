"""The NeuroFlow Hub schema: 8 enum types, 12 tables, their keys, checks and triggers.

Frozen SQL on purpose: a migration must build the same schema forever, whatever hub.models
becomes. Decisions (docs/schema-decisions.md): snake_case columns, text cuid ids, organization_id on every
tenant table with composite foreign keys to the parent's (organization_id, id), native enums,
timestamptz, defaults and CHECKs in the database, updated_at kept by a trigger.
"""

UP = r"""
CREATE TYPE agent_status AS ENUM ('IDLE', 'BUSY', 'OFFLINE', 'ERROR');
CREATE TYPE team_structure AS ENUM ('HIERARCHICAL', 'COLLABORATIVE', 'PIPELINE', 'DEMOCRATIC');
CREATE TYPE team_role AS ENUM ('LEADER', 'WORKER', 'COORDINATOR', 'SPECIALIST');
CREATE TYPE execution_status AS ENUM ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED');
CREATE TYPE integration_status AS ENUM ('CONNECTED', 'DISCONNECTED', 'ERROR', 'TESTING');
CREATE TYPE template_category AS ENUM ('SALES', 'SUPPORT', 'MARKETING', 'DATA_PROCESSING',
                                       'AUTOMATION', 'ANALYTICS', 'CONTENT', 'COMMUNICATION');
CREATE TYPE difficulty_level AS ENUM ('BEGINNER', 'INTERMEDIATE', 'ADVANCED', 'EXPERT');
CREATE TYPE member_role AS ENUM ('OWNER', 'ADMIN', 'MEMBER');

-- Keeps updated_at current on every UPDATE, bulk ones included, unless the statement sets it.
CREATE FUNCTION hub_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TABLE organizations (
    id          text PRIMARY KEY,
    name        varchar(100) NOT NULL CHECK (btrim(name) <> ''),
    slug        varchar(100) NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id          text PRIMARY KEY,
    email       varchar(255) NOT NULL UNIQUE CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    name        varchar(100) CHECK (btrim(name) <> ''),
    avatar_url  varchar(500),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE organization_members (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id          text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role             member_role NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, user_id)
);
CREATE INDEX organization_members_user_id ON organization_members (user_id);

CREATE TABLE workflow_templates (
    id               text PRIMARY KEY,
    name             varchar(100) NOT NULL CHECK (btrim(name) <> ''),
    description      text NOT NULL,
    category         template_category NOT NULL,
    nodes            jsonb NOT NULL CHECK (jsonb_typeof(nodes) = 'array'),
    edges            jsonb NOT NULL CHECK (jsonb_typeof(edges) = 'array'),
    variables        jsonb,
    icon             varchar(100),
    tags             text[] NOT NULL DEFAULT '{}',
    difficulty       difficulty_level NOT NULL DEFAULT 'BEGINNER',
    estimated_time   integer CHECK (estimated_time >= 0),
    usage_count      integer NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    rating           double precision CHECK (rating BETWEEN 0 AND 5),
    is_public        boolean NOT NULL DEFAULT false,
    is_featured      boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    organization_id  text REFERENCES organizations (id) ON DELETE CASCADE,
    created_by       text REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX workflow_templates_organization_id ON workflow_templates (organization_id);
CREATE INDEX workflow_templates_created_by ON workflow_templates (created_by);
CREATE INDEX workflow_templates_category ON workflow_templates (category);
CREATE INDEX workflow_templates_is_public ON workflow_templates (is_public);
CREATE INDEX workflow_templates_is_featured ON workflow_templates (is_featured);

CREATE TABLE workflows (
    id               text PRIMARY KEY,
    name             varchar(100) NOT NULL CHECK (btrim(name) <> ''),
    description      text,
    nodes            jsonb NOT NULL CHECK (jsonb_typeof(nodes) = 'array'),
    edges            jsonb NOT NULL CHECK (jsonb_typeof(edges) = 'array'),
    variables        jsonb,
    is_active        boolean NOT NULL DEFAULT true,
    version          varchar(20) NOT NULL DEFAULT '1.0.0',
    tags             text[] NOT NULL DEFAULT '{}',
    execution_count  integer NOT NULL DEFAULT 0 CHECK (execution_count >= 0),
    last_executed    timestamptz,
    template_id      text REFERENCES workflow_templates (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    organization_id  text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_by       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Children reference (organization_id, id): no row can point at another tenant's workflow.
    -- This unique index also serves every organization_id lookup.
    UNIQUE (organization_id, id)
);
CREATE INDEX workflows_created_by ON workflows (created_by);
CREATE INDEX workflows_is_active ON workflows (is_active);
CREATE INDEX workflows_template_id ON workflows (template_id);
CREATE INDEX workflows_created_at ON workflows (created_at);

CREATE TABLE ai_agents (
    id                 text PRIMARY KEY,
    name               varchar(100) NOT NULL CHECK (btrim(name) <> ''),
    description        text,
    avatar             varchar(500),
    personality        jsonb NOT NULL,
    model_config       jsonb NOT NULL,
    capabilities       text[] NOT NULL DEFAULT '{}',
    memory             jsonb NOT NULL,
    execution_count    integer NOT NULL DEFAULT 0 CHECK (execution_count >= 0),
    success_rate       double precision CHECK (success_rate BETWEEN 0 AND 1),
    avg_response_time  double precision CHECK (avg_response_time >= 0),
    is_active          boolean NOT NULL DEFAULT true,
    status             agent_status NOT NULL DEFAULT 'IDLE',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    organization_id    text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_by         text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    UNIQUE (organization_id, id)
);
CREATE INDEX ai_agents_created_by ON ai_agents (created_by);
CREATE INDEX ai_agents_status ON ai_agents (status);
CREATE INDEX ai_agents_is_active ON ai_agents (is_active);

CREATE TABLE agent_teams (
    id               text PRIMARY KEY,
    name             varchar(100) NOT NULL CHECK (btrim(name) <> ''),
    description      text,
    structure        team_structure NOT NULL,
    coordination     jsonb NOT NULL,
    execution_count  integer NOT NULL DEFAULT 0 CHECK (execution_count >= 0),
    success_rate     double precision CHECK (success_rate BETWEEN 0 AND 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    organization_id  text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_by       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    UNIQUE (organization_id, id)
);
CREATE INDEX agent_teams_created_by ON agent_teams (created_by);
CREATE INDEX agent_teams_structure ON agent_teams (structure);

CREATE TABLE team_members (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    team_id          text NOT NULL,
    agent_id         text NOT NULL,
    role             team_role NOT NULL,
    priority         integer NOT NULL DEFAULT 0 CHECK (priority >= 0),
    joined_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, agent_id),
    FOREIGN KEY (organization_id, team_id)
        REFERENCES agent_teams (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, agent_id)
        REFERENCES ai_agents (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX team_members_organization_id ON team_members (organization_id);
CREATE INDEX team_members_agent_id ON team_members (agent_id);

CREATE TABLE workflow_executions (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    workflow_id      text NOT NULL,
    status           execution_status NOT NULL DEFAULT 'PENDING',
    started_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    duration         integer CHECK (duration >= 0),
    input            jsonb,
    output           jsonb,
    error            text,
    logs             jsonb[] NOT NULL DEFAULT '{}',
    nodes_executed   integer NOT NULL DEFAULT 0 CHECK (nodes_executed >= 0),
    tokens_used      integer NOT NULL DEFAULT 0 CHECK (tokens_used >= 0),
    cost             numeric(12, 2) NOT NULL DEFAULT 0 CHECK (cost >= 0),
    CHECK (completed_at >= started_at),
    UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, workflow_id)
        REFERENCES workflows (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX workflow_executions_workflow_id ON workflow_executions (workflow_id);
CREATE INDEX workflow_executions_status ON workflow_executions (status);
CREATE INDEX workflow_executions_started_at ON workflow_executions (started_at);
-- A tenant's "latest executions" and "count by status" read these, not the whole table.
CREATE INDEX workflow_executions_organization_id_started_at
    ON workflow_executions (organization_id, started_at);
CREATE INDEX workflow_executions_organization_id_status
    ON workflow_executions (organization_id, status);

CREATE TABLE agent_executions (
    id                     text PRIMARY KEY,
    organization_id        text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    agent_id               text NOT NULL,
    workflow_execution_id  text,
    task                   text NOT NULL,
    input                  jsonb NOT NULL,
    output                 jsonb,
    status                 execution_status NOT NULL DEFAULT 'PENDING',
    started_at             timestamptz NOT NULL DEFAULT now(),
    completed_at           timestamptz,
    duration               integer CHECK (duration >= 0),
    tokens_used            integer NOT NULL DEFAULT 0 CHECK (tokens_used >= 0),
    cost                   numeric(12, 2) NOT NULL DEFAULT 0 CHECK (cost >= 0),
    model                  varchar(100),
    provider               varchar(50),
    CHECK (completed_at >= started_at),
    FOREIGN KEY (organization_id, agent_id)
        REFERENCES ai_agents (organization_id, id) ON DELETE CASCADE,
    -- Only the reference is cleared: the row keeps its organization (PostgreSQL 15+).
    FOREIGN KEY (organization_id, workflow_execution_id)
        REFERENCES workflow_executions (organization_id, id)
        ON DELETE SET NULL (workflow_execution_id)
);
CREATE INDEX agent_executions_agent_id ON agent_executions (agent_id);
CREATE INDEX agent_executions_workflow_execution_id ON agent_executions (workflow_execution_id);
CREATE INDEX agent_executions_status ON agent_executions (status);
CREATE INDEX agent_executions_started_at ON agent_executions (started_at);
CREATE INDEX agent_executions_organization_id_started_at
    ON agent_executions (organization_id, started_at);

CREATE TABLE team_executions (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    team_id          text NOT NULL,
    task             text NOT NULL,
    pattern          team_structure NOT NULL,
    input            jsonb NOT NULL,
    output           jsonb,
    status           execution_status NOT NULL DEFAULT 'PENDING',
    started_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    duration         integer CHECK (duration >= 0),
    agent_results    jsonb[] NOT NULL DEFAULT '{}',
    CHECK (completed_at >= started_at),
    FOREIGN KEY (organization_id, team_id)
        REFERENCES agent_teams (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX team_executions_team_id ON team_executions (team_id);
CREATE INDEX team_executions_status ON team_executions (status);
CREATE INDEX team_executions_started_at ON team_executions (started_at);
CREATE INDEX team_executions_organization_id_started_at
    ON team_executions (organization_id, started_at);

CREATE TABLE integrations (
    id               text PRIMARY KEY,
    name             varchar(100) NOT NULL CHECK (btrim(name) <> ''),
    provider         varchar(50) NOT NULL CHECK (btrim(provider) <> ''),
    credentials      jsonb NOT NULL,
    config           jsonb NOT NULL,
    is_active        boolean NOT NULL DEFAULT true,
    last_tested      timestamptz,
    status           integration_status NOT NULL DEFAULT 'DISCONNECTED',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    organization_id  text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_by       text NOT NULL REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX integrations_organization_id ON integrations (organization_id);
CREATE INDEX integrations_created_by ON integrations (created_by);
CREATE INDEX integrations_provider ON integrations (provider);
CREATE INDEX integrations_status ON integrations (status);

CREATE TRIGGER organizations_updated_at BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION hub_touch_updated_at();
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION hub_touch_updated_at();
CREATE TRIGGER workflow_templates_updated_at BEFORE UPDATE ON workflow_templates
    FOR EACH ROW EXECUTE FUNCTION hub_touch_updated_at();
CREATE TRIGGER workflows_updated_at BEFORE UPDATE ON workflows
    FOR EACH ROW EXECUTE FUNCTION hub_touch_updated_at();
CREATE TRIGGER ai_agents_updated_at BEFORE UPDATE ON ai_agents
    FOR EACH ROW EXECUTE FUNCTION hub_touch_updated_at();
CREATE TRIGGER agent_teams_updated_at BEFORE UPDATE ON agent_teams
    FOR EACH ROW EXECUTE FUNCTION hub_touch_updated_at();
CREATE TRIGGER integrations_updated_at BEFORE UPDATE ON integrations
    FOR EACH ROW EXECUTE FUNCTION hub_touch_updated_at();
"""

DOWN = r"""
DROP TABLE IF EXISTS integrations, team_executions, agent_executions, workflow_executions,
    team_members, agent_teams, ai_agents, workflows, workflow_templates,
    organization_members, users, organizations CASCADE;
DROP FUNCTION IF EXISTS hub_touch_updated_at();
DROP TYPE IF EXISTS member_role, difficulty_level, template_category, integration_status,
    execution_status, team_role, team_structure, agent_status;
"""


def up(migrator, db):
    db.execute_sql(UP)


def down(migrator, db):
    db.execute_sql(DOWN)
