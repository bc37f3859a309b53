"""One organization's rows, as COPY text lines per table, from its own random stream.

    >>> import datetime
    >>> from hub.seed.generate import Context, generate_org, SCALES
    >>> ctx = Context(seed=42, scale=SCALES['tiny'], as_of=datetime.date(2025, 1, 31),
    ...               templates=[], credentials=None)
    >>> org = generate_org(ctx, 0)
    >>> org.id == ctx.org_id(0), sorted(org.tables)[:2]
    (True, ['agent_executions', 'agent_teams'])

Everything an organization holds is drawn from `pools.stream(seed, index)` and nothing else
(the pools and the system templates are fixed inputs), so organization 7 is the same whether
3 or 300 organizations are seeded, and whichever ran before it. Executions are generated
before their parents so every counter (execution_count, last_executed, success_rate,
avg_response_time, usage_count) is known when the parent row is written: no UPDATE, whose
trigger would stamp updated_at with the wall clock.

Timestamps are epoch milliseconds laid out in the `scale.weeks` weeks before `as_of`
(00:00 UTC): organizations and users first, then agents, templates and workflows, then
executions; in-flight (PENDING/RUNNING) executions started in the last half hour.
"""
import calendar
import datetime
import uuid
from collections import namedtuple

from hub import rules
from hub.ids import ALPHABET
from hub.seed import catalog, graphs
from hub.seed.copytext import (NULL, boolean, cents, dumps, esc, item_fragment, iso, jsonb,
                               jsonb_array, line, text_array, ts)
from hub.seed.pools import ascii_slug, pools, stream

Scale = namedtuple('Scale', 'users agents teams workflows templates integrations '
                            'workflow_runs agent_tasks team_runs weeks')

#: Per-organization volumes (each jittered +-20% per organization). About 1.5 agent executions
#: come with each workflow execution, so an organization holds ~55 rows (tiny), ~430 (small),
#: ~4,000 (medium) or ~40,000 (large).
SCALES = {
    'tiny': Scale(3, 3, 1, 3, 1, 2, 12, 6, 3, 2),
    'small': Scale(8, 6, 2, 8, 2, 4, 150, 60, 20, 6),
    'medium': Scale(20, 15, 5, 20, 4, 6, 1500, 600, 200, 8),
    'large': Scale(50, 40, 12, 50, 8, 10, 15000, 6000, 2000, 12),
}

#: Tables in load order (parents first) with the columns each COPY names.
COLUMNS = {
    'organizations': 'id name slug created_at updated_at',
    'users': 'id email name avatar_url created_at updated_at',
    'organization_members': 'id organization_id user_id role created_at accepted_at',
    'workflow_templates': 'id name description category nodes edges variables icon tags '
                          'difficulty estimated_time usage_count rating is_public is_featured '
                          'created_at updated_at organization_id created_by',
    'workflows': 'id name description nodes edges variables is_active version tags '
                 'execution_count last_executed template_id created_at updated_at '
                 'organization_id created_by',
    'ai_agents': 'id name description avatar personality model_config capabilities memory '
                 'execution_count success_rate avg_response_time is_active status created_at '
                 'updated_at organization_id created_by',
    'agent_teams': 'id name description structure coordination execution_count success_rate '
                   'created_at updated_at organization_id created_by',
    'team_members': 'id organization_id team_id agent_id role priority joined_at',
    'workflow_executions': 'id organization_id workflow_id status started_at completed_at '
                           'duration input output error logs nodes_executed tokens_used cost',
    'agent_executions': 'id organization_id agent_id workflow_execution_id task input output '
                        'status started_at completed_at duration tokens_used cost model provider',
    'team_executions': 'id organization_id team_id task pattern input output status started_at '
                       'completed_at duration agent_results',
    'integrations': 'id name provider credentials config is_active last_tested status '
                    'created_at updated_at organization_id created_by',
}
TABLES = tuple(COLUMNS)

SECOND, MINUTE, HOUR, DAY, WEEK = 1000, 60000, 3600000, 86400000, 604800000

CATEGORY_ICONS = {'SALES': '🎯', 'SUPPORT': '🛟', 'MARKETING': '📣', 'DATA_PROCESSING': '🗂️',
                  'AUTOMATION': '⚙️', 'ANALYTICS': '📊', 'CONTENT': '✍️', 'COMMUNICATION': '💬'}

# Per node type: (min ms, max ms) and how a run of it fails.
NODE_TIMING = {
    'trigger': (2, 25), 'webhook': (2, 25), 'schedule': (1, 10), 'end': (1, 12),
    'condition': (1, 15), 'filter': (2, 40), 'transform': (2, 60), 'code': (20, 900),
    'loop': (80, 4000), 'http': (90, 1800), 'slack': (150, 700), 'gmail': (300, 1400),
    'email': (250, 1200), 'crm': (200, 1600), 'sheets': (250, 1500), 'notion': (200, 1300),
    'database': (20, 1200), 'team': (6000, 45000), 'delay': (0, 0), 'agent': (0, 0),
}
NODE_ERRORS = {
    'agent': ('Rate limit reached for {model} (429); retry after 20s',
              'Request timed out after 60000 ms', 'context_length_exceeded: prompt too long'),
    'http': ('HTTP 502 Bad Gateway', 'ETIMEDOUT after 8000 ms', 'HTTP 401 Unauthorized'),
    'slack': ('slack: channel_not_found', 'slack: ratelimited (retry after 30s)'),
    'gmail': ('gmail: 429 Quota exceeded for quota metric Queries', 'gmail: invalid To header'),
    'email': ('smtp: 550 5.1.1 recipient address rejected',),
    'crm': ('hubspot: 409 Conflict: contact already exists', 'hubspot: 429 secondly limit'),
    'sheets': ('sheets: 403 PERMISSION_DENIED', 'sheets: range not found'),
    'notion': ('notion: validation_error: property "Status" does not exist',),
    'database': ('canceling statement due to statement timeout',
                 'could not connect to server: Connection refused'),
    'code': ("KeyError: 'total'", "TypeError: 'NoneType' object is not subscriptable"),
    'transform': ("TypeError: cannot read properties of undefined (reading 'email')",),
    'loop': ('loop aborted after 3 failed iterations',),
    'team': ('team did not reach a decision within 3 rounds',),
}
FAILABLE = frozenset(NODE_ERRORS)
FINISHED = (('COMPLETED', 0.82), ('FAILED', 0.94), ('CANCELLED', 1.0))

Agent = namedtuple('Agent', 'id model archetype created')
# An agent's row before its counters are known (written last, by write_parents).
AgentRow = namedtuple('AgentRow', 'agent name personality config tools memory active creator '
                                  'edited')
# One node of a workflow as its executions replay it, computed once per workflow (prepare):
# timing bounds, the log entry's fixed text around its timestamp and duration (`head`, `tail`,
# `failed_tails` per error), and for agent nodes the agent execution's task and input.
Step = namedtuple('Step', 'node_id kind label agent lo hi head tail failed_tails errors task '
                          'task_input')


class Tally:
    """The counters of an agent or team, filled as its executions are drawn.

    `last` is the latest start in epoch ms, 0 before any; `busy_ms` sums the durations of
    completed runs and `running` counts in-flight ones (agents only).
    """
    __slots__ = ('runs', 'completed', 'failed', 'busy_ms', 'running', 'last')

    def __init__(self):
        self.runs = self.completed = self.failed = self.busy_ms = self.running = self.last = 0


def fast_id_factory(rng):
    """`hub.ids.new_id(rng)` at twice the speed: same stream, same ids."""
    table = _TRIPLES
    getrandbits = rng.getrandbits

    def new_id():
        v = getrandbits(124)
        v, a = divmod(v, 46656)
        v, b = divmod(v, 46656)
        v, c = divmod(v, 46656)
        v, d = divmod(v, 46656)
        v, e = divmod(v, 46656)
        v, f = divmod(v, 46656)
        v, g = divmod(v, 46656)
        return 'c' + table[a] + table[b] + table[c] + table[d] + table[e] + table[f] + \
            table[g] + table[v]
    return new_id


# new_id writes base-36 digits least significant first; three at a time here.
_TRIPLES = tuple(ALPHABET[i % 36] + ALPHABET[i // 36 % 36] + ALPHABET[i // 1296]
                 for i in range(46656))


# -- slugs: unique by construction ------------------------------------------------------------
#
# organizations.slug is UNIQUE. A slug is the company's name (one of a few hundred) and a suffix,
# and the suffix must not repeat within a seed: drawn at random (it once was the id's last six
# characters), 1,000,000 organizations give about 0.6 expected pairs with the same name and
# suffix, and the seed fails on the duplicate. The suffix is instead the organization's index,
# scrambled by a permutation of its own for each seed: a four-round Feistel network on the
# 36**6 six-character suffixes (two halves of three base-36 characters), a bijection whatever
# its round function, computed per organization with nothing remembered. Indices from 36**6
# up (past 2 billion organizations) are written in plain base 36: seven characters or more, and
# the suffix follows the slug's last '-', so they cannot meet a six-character one.
_HALF = 36 ** 3
SLUG_SUFFIX_SPACE = _HALF * _HALF


def slug_keys(seed):
    """The Feistel round keys of `seed`'s slug suffixes."""
    import hashlib

    digest = hashlib.blake2b(('neuroflow-slug\x1f%s' % seed).encode(), digest_size=16).digest()
    return tuple(int.from_bytes(digest[i:i + 4], 'big') for i in range(0, 16, 4))


def slug_suffix(keys, index):
    """The suffix of organization `index`: 6 base-36 characters, a different one for every
    index below SLUG_SUFFIX_SPACE under the same `keys`; plain base 36 above."""
    if index >= SLUG_SUFFIX_SPACE:
        digits = []
        while index:
            index, digit = divmod(index, 36)
            digits.append(ALPHABET[digit])
        return ''.join(reversed(digits))
    left, right = divmod(index, _HALF)
    for key in keys:
        left, right = right, (left + ((right ^ key) * 2654435761 >> 13)) % _HALF
    return _TRIPLES[left] + _TRIPLES[right]


class Context:
    """The inputs every organization shares: options, pools, system templates, the key."""

    def __init__(self, seed, scale, as_of, templates, credentials, uuid_users=False):
        self.seed = seed
        self.slug_keys = slug_keys(seed)
        # Where users are Supabase Auth users too, their ids are uuids (as text): auth.users.id
        # is a uuid. Drawn from the same bits a cuid would be, so nothing else changes.
        self.uuid_users = uuid_users
        self.scale = scale
        self.anchor = as_of_ms(as_of)
        self.templates = templates          # system templates: dicts, sorted by id
        self.credentials = credentials      # hub.crypto.Credentials, or None (no integrations)
        self.pools = pools()
        self.model_names = tuple(catalog.MODELS)
        weights, total = [], 0
        for name in self.model_names:
            total += catalog.MODELS[name].weight
            weights.append(total)
        self.model_weights = weights
        self.replies = tuple(esc(dumps(('%s %s' % pair).strip())[1:-1]) for pair in
                             zip(self.pools.sentences, self.pools.sentences[1:] + ('',)))

    def org_id(self, index):
        return fast_id_factory(stream(self.seed, index))()

    def org_slug(self, index):
        """The slug organization `index` gets, without generating the rest of it."""
        org = _Org(self, index)
        org.head()
        return org.slug


def _number(value):
    """A float for COPY text, NULL for None (the counters' "nothing finished yet")."""
    return NULL if value is None else repr(value)


def as_of_ms(as_of):
    """Epoch ms of `as_of` (a date: its 00:00 UTC; a datetime: that instant, naive = UTC)."""
    if isinstance(as_of, datetime.datetime):
        if as_of.tzinfo is not None:
            as_of = as_of.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return calendar.timegm(as_of.timetuple()) * 1000 + as_of.microsecond // 1000
    return calendar.timegm(as_of.timetuple()) * 1000


class OrgRows:
    """One organization's COPY lines per table."""

    def __init__(self, index, org_id):
        self.index = index
        self.id = org_id
        self.tables = {name: [] for name in TABLES}

    def count(self):
        return sum(len(rows) for rows in self.tables.values())


def generate_org(ctx, index):
    return _Org(ctx, index).run()


class _Org:
    def __init__(self, ctx, index):
        self.ctx = ctx
        self.rng = rng = stream(ctx.seed, index)
        self.new_id = fast_id_factory(rng)
        self.random = rng.random
        self.out = OrgRows(index, self.new_id())
        self.scale = ctx.scale
        self.p = ctx.pools

    # -- helpers -------------------------------------------------------------------------

    def new_uuid(self):
        """A version-4 uuid from the 124 bits a cuid would take: the stream stays in step."""
        return str(uuid.UUID(int=self.rng.getrandbits(124), version=4))

    def jitter(self, n):
        """n +- 20%, at least 1."""
        return max(1, int(round(n * (0.8 + 0.4 * self.random()))))

    def between(self, lo, hi):
        return lo + int(self.random() * (hi - lo)) if hi > lo else lo

    def add(self, table, fields):
        self.out.tables[table].append(line(fields))

    def fill(self, text):
        rng, p = self.rng, self.p
        return text.format(first=rng.choice(p.first_names), last=rng.choice(p.last_names),
                           company=rng.choice(p.companies), product=rng.choice(catalog.PRODUCTS),
                           topic=rng.choice(catalog.TOPICS), number=self.between(100, 9999),
                           quarter=self.between(1, 5), org=self.name)

    # -- the organization ------------------------------------------------------------------

    def head(self):
        """The organization's own fields: its window, creation time, name and slug."""
        ctx = self.ctx
        self.end = ctx.anchor
        self.start = ctx.anchor - self.scale.weeks * WEEK
        self.window = self.end - self.start
        self.created = self.start - self.between(0, 2 * DAY)
        self.name = self.rng.choice(self.p.companies)
        core = ascii_slug(self.name)[:60].rstrip('-') or 'org'  # slugs never hold '--'
        self.slug = '%s-%s' % (core, slug_suffix(ctx.slug_keys, self.out.index))
        self.domain = '%s.example.com' % self.slug

    def run(self):
        self.head()
        self.add('organizations', [self.out.id, esc(self.name), self.slug, ts(self.created),
                                   ts(self.created + self.between(0, self.window // 2))])
        self.users()
        self.agents()
        self.teams()
        self.integrations()
        self.templates_and_workflows()
        self.team_runs()
        self.agent_tasks()
        self.write_parents()
        return self.out

    def users(self):
        rng, p = self.rng, self.p
        self.user_ids, self.user_emails, seen = [], [], set()
        for i in range(self.jitter(self.scale.users)):
            first, last = rng.choice(p.first_names), rng.choice(p.last_names)
            local = '%s.%s' % (ascii_slug(first, ''), ascii_slug(last, ''))
            email, n = local, 1
            while email in seen:
                n += 1
                email = '%s%d' % (local, n)
            seen.add(email)
            email = '%s@%s' % (email, self.domain)
            user_id = self.new_uuid() if self.ctx.uuid_users else self.new_id()
            created = self.created if i == 0 else self.created + self.between(0, self.window // 5)
            avatar = 'https://api.dicebear.com/9.x/initials/svg?seed=%s' % local \
                if self.random() < 0.7 else None
            self.add('users', [user_id, esc(email), esc('%s %s' % (first, last)),
                               esc(avatar) if avatar else NULL, ts(created),
                               ts(created + self.between(0, self.window // 2))])
            role = 'OWNER' if i == 0 else ('ADMIN' if self.random() < 0.25 else 'MEMBER')
            # Seeded people joined when their account was made: accepted, not invited.
            self.add('organization_members', [self.new_id(), self.out.id, user_id, role,
                                              ts(created), ts(created)])
            self.user_ids.append(user_id)
            self.user_emails.append(email)
        # Objects are made after every user joined, so any user may be their creator.
        self.build_from = self.created + self.window // 5 + HOUR

    def creator(self):
        return self.rng.choice(self.user_ids)

    def agents(self):
        ctx, rng = self.ctx, self.rng
        self.agent_list, self.by_archetype, self.agent_rows = [], {}, []
        used = set()
        for _ in range(self.jitter(self.scale.agents)):
            archetype = rng.choice(catalog.ARCHETYPES)
            model = catalog.MODELS[rng.choices(ctx.model_names, cum_weights=ctx.model_weights)[0]]
            persona = rng.choice(catalog.PERSONA_NAMES)
            name = '%s (%s)' % (persona, archetype.title)
            n = 1
            while name in used:
                n += 1
                name = '%s %d (%s)' % (persona, n, archetype.title)
            used.add(name)
            agent_id = self.new_id()
            created = self.build_from + self.between(0, self.window // 5)
            extra = [t for t in rng.sample(catalog.TOOLS, 3) if t not in archetype.tools]
            tools = list(archetype.tools) + extra[:self.between(0, 3)]
            personality = {'traits': rng.sample(archetype.traits, self.between(2, 4)),
                           'tone': rng.choice(archetype.tones),
                           'style': rng.choice(archetype.styles),
                           'formality': rng.choice(('casual', 'neutral', 'formal')),
                           'usesEmoji': self.random() < 0.2}
            config = {'provider': model.provider, 'model': model.name,
                      'temperature': round(min(1.0, max(0.0, archetype.temperature
                                                        + rng.choice((-0.1, 0, 0, 0.1)))), 1),
                      'maxTokens': rng.choice((1024, 2048, 4096, 8192)),
                      'topP': rng.choice((1.0, 1.0, 0.95, 0.9)),
                      'systemPrompt': archetype.prompt.format(org=self.name)}
            memory = {'type': rng.choice(('buffer', 'summary', 'vector')),
                      'maxMessages': rng.choice((20, 50, 100)),
                      'knowledgeBase': ['%s %s' % (self.name, doc) for doc in
                                        rng.sample(('handbook', 'pricing sheet', 'FAQ',
                                                    'product docs', 'style guide',
                                                    'playbook'), self.between(1, 4))]}
            agent = Agent(agent_id, model, archetype, created)
            self.agent_list.append(agent)
            self.by_archetype.setdefault(archetype.key, []).append(agent_id)
            self.agent_rows.append(AgentRow(agent, name, personality, config, tools, memory,
                                            self.random() < 0.92, self.creator(),
                                            created + self.between(0, DAY * 3)))
        self.agent_counts = {a.id: Tally() for a in self.agent_list}
        self.agents_by_id = {a.id: a for a in self.agent_list}

    def teams(self):
        rng = self.rng
        self.team_list = []
        agents = self.agent_list
        count = min(self.jitter(self.scale.teams), len(agents) // 2)
        purposes = rng.sample(catalog.TEAM_PURPOSES, min(count, len(catalog.TEAM_PURPOSES)))
        for i in range(count):
            purpose = purposes[i % len(purposes)]
            name = purpose[0] if i < len(purposes) else '%s %d' % (purpose[0],
                                                                   i // len(purposes) + 1)
            structure = rng.choice(('HIERARCHICAL', 'COLLABORATIVE', 'PIPELINE', 'DEMOCRATIC'))
            members = rng.sample(agents, self.between(2, min(6, len(agents)) + 1))
            team_id = self.new_id()
            created = max(a.created for a in members) + self.between(HOUR, 2 * DAY)
            roles = []
            for k, agent in enumerate(members):
                if structure == 'HIERARCHICAL':
                    role, priority = ('LEADER', 0) if k == 0 else (
                        rng.choice(('WORKER', 'SPECIALIST')), 1)
                elif structure == 'PIPELINE':
                    role, priority = rng.choice(('WORKER', 'SPECIALIST')), k
                elif structure == 'COLLABORATIVE':
                    role, priority = ('COORDINATOR' if k == 0
                                      else rng.choice(('WORKER', 'SPECIALIST'))), 0
                else:
                    role, priority = rng.choice(('WORKER', 'SPECIALIST')), 0
                roles.append((agent, role, priority))
                self.add('team_members', [self.new_id(), self.out.id, team_id, agent.id, role,
                                          str(priority),
                                          ts(created + self.between(0, HOUR))])
            self.team_list.append(dict(id=team_id, name=name, purpose=purpose,
                                       structure=structure, members=roles, created=created,
                                       creator=self.creator(), runs=Tally()))

    def integrations(self):
        rng, ctx = self.rng, self.ctx
        self.integration_ids = {}
        if ctx.credentials is None:
            return
        chosen = rng.sample(catalog.INTEGRATIONS,
                            min(self.jitter(self.scale.integrations), len(catalog.INTEGRATIONS)))
        for provider, names, fields in chosen:
            integration_id = self.new_id()
            created = self.build_from + self.between(0, self.window // 3)
            draw = self.random()
            status = ('CONNECTED' if draw < 0.7 else 'ERROR' if draw < 0.82
                      else 'TESTING' if draw < 0.88 else 'DISCONNECTED')
            if status == 'TESTING':
                tested = self.end - self.between(5 * SECOND, 8 * MINUTE)
            elif status == 'DISCONNECTED':
                tested = None
            else:
                tested = max(created + MINUTE,
                             self.end - self.between(HOUR, (14 if status == 'ERROR' else 7) * DAY))
            secrets = {field: self.secret(provider, field) for field in fields}
            sealed = ctx.credentials.encrypt(secrets, at=created // 1000, context=integration_id)
            config = self.integration_config(provider)
            if status == 'ERROR':
                config['lastError'] = catalog.INTEGRATION_ERRORS[provider]
            name = rng.choice(names).format(company=self.name, slug=self.slug,
                                            email=rng.choice(self.user_emails))[:100]
            self.add('integrations', [
                integration_id, esc(name), provider, jsonb(sealed), jsonb(config),
                boolean(status != 'DISCONNECTED' or self.random() < 0.5),
                ts(tested) if tested is not None else NULL, status, ts(created),
                ts(max(created, tested or created)), self.out.id, self.creator()])
            self.integration_ids[provider] = integration_id

    def secret(self, provider, field):
        """A realistic-looking token, drawn from the stream (encrypted before it is stored)."""
        alnum = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
        body = ''.join(self.rng.choice(alnum) for _ in range(32))
        prefixes = {'bot_token': 'xoxb-', 'refresh_token': '1//0g', 'access_token': 'pat-na1-',
                    'signing_secret': 'whsec_', 'api_key': 'key_', 'token': provider[:3] + '_',
                    'auth_token': '', 'api_token': 'ATATT3x', 'client_secret': 'GOCSPX-'}
        if field == 'client_id':
            return '%d-%s.apps.googleusercontent.com' % (self.between(10 ** 11, 10 ** 12),
                                                         body[:24].lower())
        if field == 'email':
            return self.rng.choice(self.user_emails)
        if field == 'account_sid':
            return 'AC' + body.lower()
        return prefixes.get(field, '') + body

    def integration_config(self, provider):
        """The non-secret settings of an integration (only `provider`'s are drawn)."""
        rng = self.rng
        if provider == 'slack':
            return {'workspace': self.slug, 'scopes': ['chat:write', 'channels:read'],
                    'defaultChannel': rng.choice(('#general', '#alerts', '#sales', '#support'))}
        if provider == 'gmail':
            return {'email': rng.choice(self.user_emails), 'labels': ['INBOX', 'Workflows']}
        if provider == 'webhook':
            return {'url': 'https://hooks.%s/in/%s' % (self.domain, self.new_id()[-10:]),
                    'events': ['form.submitted', 'ticket.created']}
        if provider == 'http':
            return {'baseUrl': 'https://api.%s/v1' % self.domain, 'timeoutMs': 8000}
        if provider == 'notion':
            return {'workspace': self.name, 'databases': ['Content calendar', 'Wiki']}
        if provider == 'google_sheets':
            return {'spreadsheetId': self.new_id()[1:], 'sheets': ['Ledger', 'KPIs']}
        if provider == 'hubspot':
            return {'portalId': self.between(10 ** 6, 10 ** 7), 'pipeline': 'Inbound'}
        if provider == 'github':
            return {'org': self.slug, 'repositories': ['api', 'web', 'infra']}
        if provider == 'jira':
            return {'site': '%s.atlassian.net' % self.slug, 'project': 'OPS'}
        return {'fromNumber': '+1555%07d' % self.between(0, 10 ** 7)}  # twilio

    # -- templates, workflows and their executions -----------------------------------------------

    def templates_and_workflows(self):
        rng, ctx = self.rng, self.ctx
        binding = dict(agents=self.by_archetype, teams=[t['id'] for t in self.team_list],
                       integrations=self.integration_ids)
        self.private = []
        for _ in range(self.jitter(self.scale.templates)):
            recipe = rng.choice(graphs.RECIPES)
            nodes, edges, variables = graphs.build(recipe, rng, **binding)
            created = self.build_from + self.between(0, self.window // 5)
            self.private.append(dict(
                id=self.new_id(), name='%s playbook' % recipe['name'],
                description=recipe['description'], category=recipe['category'], nodes=nodes,
                edges=edges, variables=variables, tags=list(recipe['tags']), created=created,
                creator=self.creator(), uses=0,
                difficulty=rng.choice(('BEGINNER', 'INTERMEDIATE', 'ADVANCED')),
                estimated=rng.choice((10, 15, 20, 30, 45, 60))))
        self.workflows = []
        for _ in range(self.jitter(self.scale.workflows)):
            draw = self.random()
            created = self.build_from + self.window // 5 + self.between(0, self.window // 5)
            if draw < 0.25 and ctx.templates:
                source = rng.choice(ctx.templates)
            elif draw < 0.4 and self.private:
                source = rng.choice(self.private)
                source['uses'] += 1
                created = max(created, source['created'] + HOUR)
            else:
                source = None
            if source is None:
                recipe = rng.choice(graphs.RECIPES)
                nodes, edges, variables = graphs.build(recipe, rng, **binding)
                name, description, tags = recipe['name'], recipe['description'], recipe['tags']
            else:
                nodes, edges, variables = source['nodes'], source['edges'], source['variables']
                name, description, tags = source['name'], source['description'], source['tags']
            self.workflows.append(dict(
                id=self.new_id(), name=(name + rng.choice(graphs.REGIONS))[:100],
                description=description, nodes=nodes, edges=edges, variables=variables,
                tags=list(tags), template=source['id'] if source else None, created=created,
                creator=self.creator(), active=self.random() < 0.88,
                version='1.%d.%d' % (self.between(0, 5), self.between(0, 10)),
                runs=0, last=None))
        self.workflow_runs()

    def prepare(self, workflow):
        """What executions of `workflow` need, computed once: its paths with per-node parts."""
        rng = self.rng
        nodes = {n['id']: n for n in workflow['nodes']}
        agents = self.agents_by_id
        steps = {}
        for node in workflow['nodes']:
            data = node.get('data') or {}
            kind = node['type']
            label = str(data.get('label') or node['id'])
            agent = None
            if kind == 'agent':
                agent = agents.get(data.get('agentId'))
                if agent is None:
                    wanted = data.get('model')
                    same = [a for a in self.agent_list if a.model.name == wanted]
                    agent = rng.choice(same or self.agent_list)
            lo, hi = NODE_TIMING.get(kind, (5, 300))
            if kind == 'delay':
                seconds = data.get('seconds')
                lo = hi = int(seconds * 1000) if isinstance(seconds, (int, float)) else 60000
            head = item_fragment('{"ts":"')
            tail = item_fragment('","nodeId":%s,"level":"info","message":%s,"durationMs":'
                                 % (dumps(node['id']), dumps(self.log_message(kind, label, agent))))
            if kind in NODE_ERRORS:
                errors = [e.format(model=agent.model.name if agent else 'the model')
                          for e in NODE_ERRORS[kind]]
            else:
                errors = ['%s failed' % label]
            failed_tails = [item_fragment('","nodeId":%s,"level":"error","message":%s,"durationMs":'
                                          % (dumps(node['id']), dumps(e))) for e in errors]
            task_input = jsonb({'prompt': str(data.get('prompt') or data.get('instructions')
                                              or label)[:500],
                                'workflow': workflow['name'], 'node': node['id']})
            steps[node['id']] = Step(node['id'], kind, label, agent, lo, hi, head, tail,
                                     failed_tails, errors, esc(label), task_input)
        runs = []
        for path in graphs.paths(workflow['nodes'], workflow['edges']):
            run = [steps[n] for n in path]
            failable = [i for i, s in enumerate(run) if s.kind in FAILABLE] or [len(run) - 1]
            last = nodes[path[-1]].get('data', {}).get('label') or path[-1]
            output = jsonb({'status': 'ok', 'result': last, 'nodesExecuted': len(run)})
            runs.append((run, failable, output))
        inputs = [self.trigger_input(workflow) for _ in range(8)]
        return runs, inputs

    def log_message(self, kind, label, agent):
        if kind == 'trigger':
            return 'Triggered: %s' % label
        if agent is not None:
            return '%s: response from %s' % (label, agent.model.name)
        return '%s completed' % label

    def trigger_input(self, workflow):
        rng, p = self.rng, self.p
        trigger = next((n for n in workflow['nodes'] if n['type'] == 'trigger'), {})
        data = trigger.get('data') or {}
        kind = data.get('trigger', 'webhook')
        first, last = rng.choice(p.first_names), rng.choice(p.last_names)
        if kind == 'schedule':
            doc = {'trigger': 'schedule', 'cron': data.get('cron', '0 * * * *'), 'timezone': 'UTC'}
        elif kind == 'email':
            doc = {'trigger': 'email', 'from': '%s.%s@%s' % (
                ascii_slug(first, ''), ascii_slug(last, ''), 'example.org'),
                'subject': rng.choice(p.subjects), 'attachments': self.between(1, 4)}
        elif kind == 'manual':
            doc = {'trigger': 'manual', 'requestedBy': rng.choice(self.user_emails),
                   'note': rng.choice(p.sentences)}
        else:
            company = rng.choice(p.companies)
            doc = {'trigger': kind, 'source': data.get('source', 'form'), 'payload': {
                'name': '%s %s' % (first, last), 'email': '%s@%s.example.org' % (
                    ascii_slug(first, ''), ascii_slug(company)),
                'company': company, 'title': rng.choice(p.jobs),
                'message': rng.choice(p.subjects)}}
        return jsonb(doc)

    def run_start(self, earliest):
        """A start time between `earliest` and two hours before the end, mostly office hours."""
        lo, hi = earliest, self.end - 2 * HOUR
        t = lo + int(self.random() * (hi - lo))
        if self.random() < 0.6:
            shifted = t - t % DAY + 8 * HOUR + int(self.random() * 10 * HOUR)
            if lo <= shifted <= hi:
                t = shifted
        return t

    def workflow_runs(self):
        rng = self.rng
        workflows = self.workflows
        if not workflows:
            return
        weights = [rng.paretovariate(1.3) for _ in workflows]
        picks = rng.choices(range(len(workflows)), weights=weights,
                            k=self.jitter(self.scale.workflow_runs))
        counts = [0] * len(workflows)
        for i in picks:
            counts[i] += 1
        live = [w for w in workflows if w['active']]
        inflight = rng.sample(live, min(len(live), self.between(0, 2 + len(live) // 4)))
        for workflow, count in zip(workflows, counts):
            prepared = self.prepare(workflow)
            earliest = workflow['created'] + 10 * MINUTE
            for _ in range(count):
                self.workflow_run(workflow, prepared, self.run_start(earliest), None)
            if workflow in inflight:
                state = 'RUNNING' if self.random() < 0.6 else 'PENDING'
                started = self.end - (self.between(MINUTE, 30 * MINUTE) if state == 'RUNNING'
                                      else self.between(5 * SECOND, 5 * MINUTE))
                self.workflow_run(workflow, prepared, started, state)

    def workflow_run(self, workflow, prepared, started, state):
        """One workflow execution and the agent executions of its agent nodes."""
        random = self.random
        runs, inputs = prepared
        run, failable, output = runs[int(random() * len(runs))]
        if state is None:
            draw = random()
            state = 'COMPLETED' if draw < 0.82 else 'FAILED' if draw < 0.94 else 'CANCELLED'
        if state == 'COMPLETED':
            stop = len(run)
        elif state == 'FAILED':
            stop = failable[int(random() * len(failable))] + 1
        elif state == 'PENDING':
            stop = 0
        else:
            stop = 1 + int(random() * (len(run) - 1)) if len(run) > 1 else 1
        exec_id = self.new_id()
        org = self.out.id
        logs = []
        t = started
        tokens = hundredths = 0
        error = NULL
        for i in range(stop):
            # Unpacked at once rather than read field by field: this runs for every node of
            # every execution. The order is Step's.
            _, _, label, agent, lo, hi, head, tail, failed_tails, errors, task, task_input = \
                run[i]
            failing = state == 'FAILED' and i == stop - 1
            if agent is not None:
                inp, out, duration = self.agent_draw(agent, 'FAILED' if failing else 'COMPLETED')
            else:
                duration = lo + int(random() * (hi - lo))
            # An in-flight run is busy with its last node, or with the one that would end
            # after as-of: nothing seeded finishes in the future.
            running = state == 'RUNNING' and (i == stop - 1 or t + duration + 2 >= self.end)
            if agent is not None:
                status = 'RUNNING' if running else 'FAILED' if failing else 'COMPLETED'
                tokens, hundredths = self.agent_row(
                    agent, task, task_input, exec_id, t, status, inp, out, duration,
                    tokens, hundredths)
            if running:
                break  # no log entry until the node finishes
            if failing:
                which = int(random() * len(errors))
                logs.append('"' + head + iso(t) + failed_tails[which] + str(duration) + '}"')
                error = esc('%s: %s' % (label, errors[which]))
            else:
                logs.append('"' + head + iso(t) + tail + str(duration) + '}"')
            t += duration + 2
        finished = state in ('COMPLETED', 'FAILED', 'CANCELLED')
        if state == 'COMPLETED':
            out = output
        elif state == 'CANCELLED':
            out = '{"status":"cancelled","reason":"Cancelled by user"}'
        else:
            out = NULL
        self.out.tables['workflow_executions'].append(line((
            exec_id, org, workflow['id'], state, ts(started),
            ts(t) if finished else NULL, str(t - started) if finished else NULL,
            inputs[int(random() * len(inputs))], out, error, '{' + ','.join(logs) + '}',
            str(len(logs)), str(tokens), cents(hundredths))))
        workflow['runs'] += 1
        if workflow['last'] is None or started > workflow['last']:
            workflow['last'] = started

    def agent_draw(self, agent, status):
        """(input tokens, output tokens, duration ms) of one call that ends as `status`."""
        random = self.random
        a_lo, a_hi, o_lo, o_hi = agent.archetype.tokens
        inp = a_lo + int(random() * (a_hi - a_lo))
        out = o_lo + int(random() * (o_hi - o_lo)) if status == 'COMPLETED' else 0
        if status == 'CANCELLED':
            inp = 0
        return inp, out, 250 + inp // 12 + out * (8 + int(random() * 22))

    def agent_row(self, agent, task, task_input, exec_id, started, status, inp, out, duration,
                  tokens=0, hundredths=0):
        """Append one agent execution; returns `tokens` and `hundredths` plus its own."""
        model = agent.model
        counts = self.agent_counts[agent.id]
        counts.runs += 1
        counts.last = max(counts.last, started)
        if status in ('RUNNING', 'PENDING'):
            counts.running += status == 'RUNNING'
            self.out.tables['agent_executions'].append(line((
                self.new_id(), self.out.id, agent.id, exec_id, task, task_input, NULL, status,
                ts(started), NULL, NULL, '0', '0.00', model.name, model.provider)))
            return tokens, hundredths
        cost = catalog.cost_hundredths(model, inp, out)
        if status == 'COMPLETED':
            output = '{"text":"%s","usage":{"inputTokens":%d,"outputTokens":%d},' \
                     '"finishReason":"stop"}' % (self.reply(), inp, out)
            counts.completed += 1
            counts.busy_ms += duration
        else:
            output = '{"finishReason":"%s","usage":{"inputTokens":%d,"outputTokens":0}}' \
                     % ('cancelled' if status == 'CANCELLED' else 'error', inp)
            counts.failed += status == 'FAILED'
        self.out.tables['agent_executions'].append(line((
            self.new_id(), self.out.id, agent.id, exec_id, task, task_input, output, status,
            ts(started), ts(started + duration), str(duration), str(inp + out), cents(cost),
            model.name, model.provider)))
        return tokens + inp + out, hundredths + cost

    def reply(self):
        """A short model reply, escaped for a JSON string inside a COPY field."""
        replies = self.ctx.replies
        return replies[int(self.random() * len(replies))]

    def agent_tasks(self):
        """Executions of agents outside any workflow: chat and API tasks."""
        rng, random = self.rng, self.random
        agents = self.agent_list
        weights = [rng.paretovariate(1.5) for _ in agents]
        picks = rng.choices(agents, weights=weights, k=self.jitter(self.scale.agent_tasks))
        for agent in picks:
            task = self.fill(rng.choice(agent.archetype.tasks))
            task_input = jsonb({'task': task, 'messages': [
                {'role': 'user', 'content': rng.choice(self.p.subjects)}]})
            draw = random()
            status = 'COMPLETED' if draw < 0.85 else 'FAILED' if draw < 0.96 else 'CANCELLED'
            inp, out, duration = self.agent_draw(agent, status)
            self.agent_row(agent, esc(task), task_input, NULL,
                           self.run_start(agent.created + 10 * MINUTE), status, inp, out,
                           duration)
        live = [row.agent for row in self.agent_rows if row.active]
        for agent in rng.sample(live, min(len(live), self.between(0, 2))):
            task = self.fill(rng.choice(agent.archetype.tasks))
            self.agent_row(agent, esc(task), jsonb({'task': task}), NULL,
                           self.end - self.between(30 * SECOND, 20 * MINUTE), 'RUNNING', 0, 0, 0)

    def team_runs(self):
        rng, random = self.rng, self.random
        teams = self.team_list
        if not teams:
            return
        rows = self.out.tables['team_executions']
        org = self.out.id
        picks = rng.choices(teams, k=self.jitter(self.scale.team_runs))
        inflight = rng.sample(teams, min(len(teams), self.between(0, 2)))
        jobs = [(team, None) for team in picks] + [(team, 'RUNNING') for team in inflight]
        for team, state in jobs:
            if state is None:
                draw = random()
                state = 'COMPLETED' if draw < 0.8 else 'FAILED' if draw < 0.93 else 'CANCELLED'
                started = self.run_start(team['created'] + 10 * MINUTE)
            else:
                started = self.end - self.between(MINUTE, 25 * MINUTE)
            task = self.fill(rng.choice(team['purpose'][2]))
            members = team['members']
            fail_at = int(random() * len(members)) if state in ('FAILED', 'CANCELLED') else -1
            if state == 'RUNNING':
                fail_at = int(random() * len(members))
            pipeline = team['structure'] == 'PIPELINE'
            results, elapsed, longest = [], 0, 0
            for k, (agent, role, priority) in enumerate(members):
                if k == fail_at:
                    status = {'FAILED': 'failed', 'CANCELLED': 'cancelled',
                              'RUNNING': 'running'}[state]
                elif fail_at >= 0 and k > fail_at and (pipeline or state == 'RUNNING'):
                    status = 'pending' if state == 'RUNNING' else 'skipped'
                else:
                    status = 'completed'
                duration = 0 if status in ('pending', 'skipped', 'running') else \
                    800 + int(random() * 20000)
                used = 0 if duration == 0 else 300 + int(random() * 4000)
                result = {'agentId': agent.id, 'role': role, 'priority': priority,
                          'status': status, 'tokensUsed': used, 'durationMs': duration}
                if status == 'completed':
                    result['summary'] = rng.choice(self.p.sentences)
                elif status == 'failed':
                    result['error'] = 'Rate limit reached for %s (429)' % agent.model.name
                results.append(result)
                elapsed += duration
                longest = max(longest, duration)
            total = elapsed if pipeline else longest + 500 + int(random() * 3000)
            finished = state != 'RUNNING'
            if state == 'COMPLETED':
                output = {'summary': rng.choice(self.p.sentences)}
                if team['structure'] == 'DEMOCRATIC':
                    yes = self.between(len(members) // 2 + 1, len(members) + 1)
                    output['votes'] = {'approve': yes, 'reject': len(members) - yes}
                out = jsonb(output)
            elif state == 'FAILED':
                out = jsonb({'error': '%s failed: %s' % (members[fail_at][0].id,
                                                         results[fail_at]['error'])})
            elif state == 'CANCELLED':
                out = jsonb({'status': 'cancelled', 'reason': 'Cancelled by user'})
            else:
                out = NULL
            rows.append(line((
                self.new_id(), org, team['id'], esc(task), team['structure'],
                jsonb({'task': task, 'priority': rng.choice(('low', 'normal', 'high'))}), out,
                state, ts(started), ts(started + total) if finished else NULL,
                str(total) if finished else NULL, jsonb_array(results))))
            counts = team['runs']
            counts.runs += 1
            counts.completed += state == 'COMPLETED'
            counts.failed += state == 'FAILED'
            counts.last = max(counts.last, started)

    # -- parents, with their counters -----------------------------------------------------

    def write_parents(self):
        org = self.out.id
        for t in self.private:
            self.add('workflow_templates', [
                t['id'], esc(t['name'][:100]), esc(t['description']), t['category'],
                jsonb(t['nodes']), jsonb(t['edges']), jsonb(t['variables']),
                CATEGORY_ICONS[t['category']], text_array(t['tags']), t['difficulty'],
                str(t['estimated']), str(t['uses']), NULL, 'f', 'f', ts(t['created']),
                ts(t['created'] + self.between(0, DAY)), org, t['creator']])
        for w in self.workflows:
            updated = max(w['created'] + self.between(0, 2 * DAY), w['last'] or 0)
            self.add('workflows', [
                w['id'], esc(w['name']), esc(w['description']) if w['description'] else NULL,
                jsonb(w['nodes']), jsonb(w['edges']),
                jsonb(w['variables']) if w['variables'] is not None else NULL,
                boolean(w['active']), w['version'], text_array(w['tags']), str(w['runs']),
                ts(w['last']) if w['last'] is not None else NULL, w['template'] or NULL,
                ts(w['created']), ts(updated), org, w['creator']])
        for row in self.agent_rows:
            agent, counts = row.agent, self.agent_counts[row.agent.id]
            if counts.running:
                status = 'BUSY'
            elif not row.active:
                status = 'OFFLINE'
            else:
                status = 'ERROR' if self.random() < 0.04 else 'IDLE'
            self.add('ai_agents', [
                agent.id, esc(row.name), esc(agent.archetype.description),
                'https://api.dicebear.com/9.x/bottts/svg?seed=%s' % agent.id,
                jsonb(row.personality), jsonb(row.config), text_array(row.tools),
                jsonb(row.memory), str(counts.runs),
                _number(rules.success_rate(counts.completed, counts.failed)),
                _number(rules.mean_duration(counts.busy_ms, counts.completed)),
                boolean(row.active), status, ts(agent.created), ts(max(row.edited, counts.last)),
                org, row.creator])
        for team in self.team_list:
            counts = team['runs']
            coordination = dict(catalog.COORDINATION[team['structure']])
            members = [a for a, _, _ in team['members']]
            if team['structure'] == 'HIERARCHICAL':
                coordination['leaderId'] = members[0].id
            elif team['structure'] == 'PIPELINE':
                coordination['stages'] = [a.id for a in members]
            self.add('agent_teams', [
                team['id'], esc(team['name']), esc(team['purpose'][1]), team['structure'],
                jsonb(coordination), str(counts.runs),
                _number(rules.success_rate(counts.completed, counts.failed)),
                ts(team['created']), ts(max(team['created'] + self.between(0, DAY), counts.last)),
                org, team['creator']])

