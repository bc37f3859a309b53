"""What the seeded world is made of: models and their prices, tools, agent archetypes, teams.

    >>> from hub.seed.catalog import MODELS, cost_hundredths
    >>> gpt4o = MODELS['gpt-4o']
    >>> gpt4o.provider, gpt4o.input_cents, gpt4o.output_cents   # cents per million tokens
    ('openai', 250, 1000)
    >>> cost_hundredths(gpt4o, 1200, 350)                       # 0.65 cents
    65

Prices are the providers' public list prices per million tokens, in US cents. An execution's
`cost` column is in cents with two decimals: round((input * in + output * out) / 1e6, 2), which
`cost_hundredths` computes in integers (hundredths of a cent, half up) so Python and SQL agree.
"""
from collections import namedtuple

Model = namedtuple('Model', 'provider name input_cents output_cents weight context')

#: Every model an agent may use, with list prices (US cents per 1M tokens) and a pick weight.
MODELS = {m.name: m for m in (
    Model('openai', 'gpt-4o', 250, 1000, 24, 128000),
    Model('openai', 'gpt-4o-mini', 15, 60, 18, 128000),
    Model('openai', 'gpt-4.1', 200, 800, 8, 1047576),
    Model('openai', 'o3-mini', 110, 440, 4, 200000),
    Model('anthropic', 'claude-sonnet-4', 300, 1500, 20, 200000),
    Model('anthropic', 'claude-3-5-haiku', 80, 400, 8, 200000),
    Model('anthropic', 'claude-opus-4', 1500, 7500, 3, 200000),
    Model('google', 'gemini-2.5-pro', 125, 1000, 5, 1048576),
    Model('google', 'gemini-2.0-flash', 10, 40, 5, 1048576),
    Model('mistral', 'mistral-large-latest', 200, 600, 3, 131072),
    Model('groq', 'llama-3.3-70b-versatile', 59, 79, 2, 131072),
)}


def cost_hundredths(model, input_tokens, output_tokens):
    """Cost in hundredths of a cent, rounded half up: what numeric(12,2) cents stores."""
    return (input_tokens * model.input_cents + output_tokens * model.output_cents + 5000) // 10000


#: The tool vocabulary agents draw their capabilities from (function-calling names).
TOOLS = (
    'web_search', 'web_browse', 'code_interpreter', 'file_search', 'pdf_extract', 'ocr',
    'send_email', 'read_inbox', 'slack_post_message', 'slack_read_channel', 'http_request',
    'sql_query', 'sheets_read', 'sheets_write', 'calendar_schedule', 'crm_lookup',
    'crm_update', 'zendesk_ticket', 'jira_create_issue', 'github_search_code',
    'github_create_pr', 'notion_write', 'notion_search', 'translate', 'summarize',
    'sentiment_analysis', 'image_generation', 'chart_render', 'vector_search',
    'stripe_lookup', 'twilio_sms')

Archetype = namedtuple('Archetype', 'key title description tools temperature tones styles '
                                    'traits tasks prompt tokens category')

#: Kinds of agent a team builds, each with its tools, voice, typical tasks and token usage.
#: Task strings take {first} {last} {company} {product} {topic} {number} from the pools.
ARCHETYPES = (
    Archetype('sdr', 'Lead Qualifier',
              'Scores inbound leads against the ideal customer profile and drafts a first reply.',
              ('crm_lookup', 'web_search', 'crm_update', 'send_email'), 0.3,
              ('friendly', 'professional', 'upbeat'), ('concise', 'persuasive'),
              ('curious', 'persistent', 'optimistic', 'organized'),
              ('Qualify inbound lead {first} {last} from {company}',
               'Draft a follow-up email to {first} {last} at {company}',
               'Research {company} before the discovery call',
               'Score lead #{number} against the ICP'),
              'You qualify B2B leads for {org}. Be strict about fit and honest about uncertainty.',
              (900, 2600, 180, 700), 'SALES'),
    Archetype('support', 'Support Triage',
              'Classifies incoming tickets, answers the common ones and escalates the rest.',
              ('zendesk_ticket', 'vector_search', 'sentiment_analysis', 'slack_post_message'), 0.2,
              ('empathetic', 'calm', 'reassuring'), ('step-by-step', 'plain language'),
              ('patient', 'empathetic', 'precise', 'thorough'),
              ('Triage ticket #{number}: {topic}',
               'Answer {first} {last} about {topic}',
               'Summarize the thread on ticket #{number}',
               'Detect urgency of ticket #{number} from {company}'),
              'You are the first line of support at {org}. Cite the help-center article you used.',
              (1200, 4200, 150, 600), 'SUPPORT'),
    Archetype('analyst', 'Data Analyst',
              'Answers questions about the warehouse with SQL and explains the numbers.',
              ('sql_query', 'code_interpreter', 'chart_render', 'sheets_read'), 0.1,
              ('neutral', 'precise'), ('tables first', 'short explanations'),
              ('analytical', 'skeptical', 'rigorous', 'methodical'),
              ('Weekly revenue breakdown for {product}',
               'Explain the churn spike in week {number}',
               'Cohort retention for accounts created in Q{quarter}',
               'Forecast pipeline for {product} next quarter'),
              'You write read-only SQL against the {org} warehouse and show the query you ran.',
              (1500, 6000, 300, 1400), 'ANALYTICS'),
    Archetype('writer', 'Content Writer',
              'Drafts blog posts, release notes and social copy in the brand voice.',
              ('web_search', 'notion_write', 'summarize', 'image_generation'), 0.8,
              ('witty', 'warm', 'confident'), ('storytelling', 'scannable headings'),
              ('creative', 'playful', 'detail-oriented', 'curious'),
              ('Draft a blog post about {topic}',
               'Write release notes for {product} v{number}',
               'Three LinkedIn posts announcing {product}',
               'Rewrite the landing page hero for {product}'),
              'You write for {org}. Match the brand voice guide and never invent customer quotes.',
              (700, 2000, 900, 3200), 'CONTENT'),
    Archetype('marketer', 'Campaign Strategist',
              'Plans campaigns, segments audiences and reports on performance.',
              ('sheets_read', 'web_search', 'crm_lookup', 'chart_render'), 0.6,
              ('energetic', 'confident'), ('bullet points', 'data-backed'),
              ('strategic', 'creative', 'data-driven', 'bold'),
              ('Segment the newsletter audience for the {product} launch',
               'Campaign recap for {topic}',
               'A/B test plan for the {product} pricing page',
               'Competitor positioning brief on {company}'),
              'You plan marketing campaigns for {org} and tie every idea to a metric.',
              (1000, 3500, 500, 1800), 'MARKETING'),
    Archetype('ops', 'Ops Automator',
              'Moves data between tools, keeps records in sync and reports what changed.',
              ('http_request', 'sheets_write', 'crm_update', 'slack_post_message'), 0.0,
              ('terse', 'neutral'), ('checklists', 'json'),
              ('reliable', 'methodical', 'precise', 'cautious'),
              ('Sync {company} account fields from the CRM',
               'Reconcile invoices for batch #{number}',
               'Clean duplicate contacts for {company}',
               'Export week {number} orders to the finance sheet'),
              'You automate back-office work at {org}. Never delete data; report every change.',
              (600, 1800, 100, 500), 'AUTOMATION'),
    Archetype('researcher', 'Research Assistant',
              'Reads sources, compares them and writes cited summaries.',
              ('web_search', 'web_browse', 'pdf_extract', 'summarize'), 0.4,
              ('scholarly', 'balanced'), ('citations', 'executive summary'),
              ('curious', 'skeptical', 'thorough', 'analytical'),
              ('Market research: {topic}',
               'Summarize the {company} annual report',
               'Compare three vendors for {topic}',
               'Literature review on {topic}'),
              'You research for {org}. Every claim needs a source; say when sources disagree.',
              (2500, 9000, 600, 2200), 'DATA_PROCESSING'),
    Archetype('engineer', 'Code Reviewer',
              'Reviews pull requests, explains failures and proposes small fixes.',
              ('github_search_code', 'github_create_pr', 'code_interpreter', 'jira_create_issue'),
              0.2, ('direct', 'constructive'), ('diff-first', 'short rationale'),
              ('precise', 'pragmatic', 'skeptical', 'helpful'),
              ('Review pull request #{number}',
               'Explain the failing build #{number}',
               'Propose a fix for issue #{number}',
               'Write tests for the {product} billing module'),
              'You review code for {org}. Prefer small, safe changes and explain the risk.',
              (2000, 8000, 400, 1600), 'AUTOMATION'),
    Archetype('scheduler', 'Meeting Coordinator',
              'Finds slots, books meetings and sends agendas and recaps.',
              ('calendar_schedule', 'send_email', 'read_inbox', 'summarize'), 0.3,
              ('polite', 'efficient'), ('short messages', 'bullet points'),
              ('organized', 'courteous', 'proactive', 'reliable'),
              ('Book a demo with {first} {last} from {company}',
               'Send the agenda for the {product} kickoff',
               'Recap the call with {company}',
               'Reschedule the QBR with {company}'),
              'You coordinate meetings for the {org} team across time zones.',
              (500, 1500, 150, 500), 'COMMUNICATION'),
    Archetype('success', 'Customer Success Advisor',
              'Watches account health, drafts check-ins and flags churn risk.',
              ('crm_lookup', 'sentiment_analysis', 'send_email', 'stripe_lookup'), 0.5,
              ('warm', 'professional'), ('personal', 'action items'),
              ('empathetic', 'proactive', 'attentive', 'optimistic'),
              ('Health check for {company}',
               'Draft the renewal email for {company}',
               'Churn-risk summary for {first} {last}',
               'Prepare the QBR deck outline for {company}'),
              'You help {org} customers succeed. Flag risk early and suggest one next step.',
              (1000, 3000, 300, 1100), 'SUPPORT'),
)

TEAM_PURPOSES = (
    ('Inbound Sales Pod', 'Qualifies, researches and books meetings with inbound leads.',
     ('Work the inbound queue for {company}', 'Prepare the pipeline review for week {number}')),
    ('Support Swarm', 'Triages tickets, drafts answers and escalates with context.',
     ('Clear the overnight ticket backlog', 'Resolve the escalation from {company}')),
    ('Content Studio', 'Researches, drafts and edits long-form content.',
     ('Produce a blog post on {topic}', 'Turn the {product} webinar into a newsletter')),
    ('Insights Desk', 'Answers business questions with data and a written summary.',
     ('Board metrics pack for Q{quarter}', 'Explain the {product} conversion drop')),
    ('RevOps Crew', 'Keeps CRM, billing and spreadsheets in sync.',
     ('Quarter-end reconciliation', 'Enrich stale accounts like {company}')),
    ('Launch Squad', 'Plans and runs product launches end to end.',
     ('Launch plan for {product}', 'Launch retro for {product}')),
    ('Research Guild', 'Runs market and competitor research with sources.',
     ('Competitive landscape: {topic}', 'Due diligence on {company}')),
    ('Engineering Review Board', 'Reviews changes and triages failing builds.',
     ('Review the {product} release branch', 'Triage the flaky test report #{number}')),
)

#: How each team structure coordinates its members (the coordination jsonb).
COORDINATION = {
    'HIERARCHICAL': {'delegation': 'leader-assigns', 'maxDelegationDepth': 2,
                     'escalateOnFailure': True},
    'COLLABORATIVE': {'sharedMemory': True, 'maxRounds': 3, 'turnTaking': 'round-robin'},
    'PIPELINE': {'passOutput': True, 'stopOnFailure': True},
    'DEMOCRATIC': {'votingMethod': 'majority', 'quorum': 0.6, 'tieBreaker': 'random'},
}

PERSONA_NAMES = (
    'Nova', 'Atlas', 'Echo', 'Sage', 'Iris', 'Orion', 'Lumen', 'Juniper', 'Piper', 'Quill',
    'Rhea', 'Milo', 'Zara', 'Felix', 'Ada', 'Turing', 'Cleo', 'Vega', 'Onyx', 'Ember',
    'Sol', 'Luna', 'Kai', 'Nyx', 'Remy', 'Tess', 'Hugo', 'Ivy', 'Otto', 'Wren')

TOPICS = (
    'onboarding emails', 'usage-based pricing', 'SOC 2 readiness', 'AI governance',
    'customer churn', 'data retention', 'single sign-on', 'the mobile app', 'API rate limits',
    'GDPR requests', 'warehouse costs', 'product-led growth', 'partner channels',
    'holiday campaign', 'trial conversion', 'password reset', 'invoice disputes',
    'webhook retries', 'CSV imports', 'the new dashboard')

PRODUCTS = (
    'Atlas', 'Beacon', 'Compass', 'Drift', 'Forge', 'Harbor', 'Insight', 'Keystone',
    'Ledger', 'Meridian', 'Pulse', 'Relay', 'Summit', 'Vector')

#: Integration providers: display names, config shape and the secret fields they hold.
INTEGRATIONS = (
    ('slack', ('Slack - {company}', 'Slack alerts'), ('bot_token', 'signing_secret')),
    ('gmail', ('Gmail - {email}', 'Shared inbox'), ('client_id', 'client_secret',
                                                     'refresh_token')),
    ('webhook', ('Inbound webhook', 'Form webhook'), ('signing_secret',)),
    ('http', ('Internal API', 'Billing API'), ('api_key',)),
    ('notion', ('Notion workspace',), ('token',)),
    ('google_sheets', ('Finance sheets', 'Reporting sheets'), ('service_account_key',)),
    ('hubspot', ('HubSpot CRM',), ('access_token',)),
    ('github', ('GitHub - {slug}',), ('token',)),
    ('jira', ('Jira Cloud',), ('email', 'api_token')),
    ('twilio', ('Twilio SMS',), ('account_sid', 'auth_token')),
)

INTEGRATION_ERRORS = {
    'slack': 'invalid_auth: the bot token was revoked',
    'gmail': 'invalid_grant: Token has been expired or revoked.',
    'webhook': 'signature mismatch on the last 3 deliveries',
    'http': 'HTTP 401 Unauthorized from the health endpoint',
    'notion': 'unauthorized: API token is invalid.',
    'google_sheets': 'PERMISSION_DENIED: the service account lost access to the sheet',
    'hubspot': '401 Authentication credentials not found',
    'github': 'Bad credentials (401)',
    'jira': '403 Forbidden: API token lacks browse permission',
    'twilio': '20003 Authenticate: invalid account SID or auth token',
}
