"""Workflow graphs for seeded organizations: real recipes, varied per organization, validated.

    >>> import random
    >>> from hub.seed import graphs
    >>> recipe = graphs.RECIPES[0]
    >>> nodes, edges, variables = graphs.build(recipe, random.Random(1),
    ...                                        agents={'sdr': ['cagent1']})
    >>> nodes[0]['type'], graphs.hub_graph.validate(nodes, edges)
    ('trigger', [])
    >>> graphs.paths(nodes, edges)[0][:4]     # what one execution runs, in order
    ['lead', 'http-1', 'agent-2', 'condition-3']

A recipe is a list of steps; `build` turns it into React Flow nodes and edges with
`hub.graph.node`/`edge`, lays it out with `hub.graph.place` and checks it with
`hub.graph.check`, so every generated graph obeys the one validator. `paths` lists what an
execution can run: the nodes reached when each condition takes one branch, in topological
order; executions log exactly one such path (or a prefix of it when they stop early).
"""
import itertools
from collections import defaultdict

from hub import graph as hub_graph

# A step is (type, label, data) for one node, ('condition', label, expression, yes, no) for a
# branch (yes/no are step lists; a branch ending in an end node stops there, otherwise both
# branches meet again at the next step), or ('parallel', branches) to fan out and meet again.
RECIPES = (
    dict(key='lead', name='Inbound lead qualification', category='SALES',
         tags=('sales', 'lead-scoring', 'crm'),
         description='Scores new website leads, routes hot ones to sales and nurtures the rest.',
         variables={'min_score': 70, 'sales_channel': '#sales-hot-leads'},
         trigger=('lead', 'New website lead', {'trigger': 'webhook', 'path': '/hooks/leads'}),
         steps=[('http', 'Enrich company', {'method': 'GET',
                                            'url': 'https://api.clearbit.com/v2/companies/find'}),
                ('agent:sdr', 'Score lead', {'prompt': 'Score this lead 0-100 against our ICP.'}),
                ('condition', 'Hot lead?', '{{score}} >= {{min_score}}',
                 [('crm', 'Create deal', {'action': 'create', 'object': 'deal'}),
                  ('notify', 'Alert sales', {'channel': '{{sales_channel}}'}),
                  ('end', 'Routed to sales', {})],
                 [('email', 'Start nurture sequence', {'sequence': 'Nurture 30 days'}),
                  ('end', 'Nurtured', {})])]),
    dict(key='triage', name='Support ticket triage', category='SUPPORT',
         tags=('support', 'zendesk', 'triage'),
         description='Classifies each new ticket, pages on-call for outages, drafts replies.',
         variables={'oncall_channel': '#support-oncall'},
         trigger=('ticket', 'New ticket', {'trigger': 'webhook', 'source': 'zendesk'}),
         steps=[('agent:support', 'Classify ticket', {'prompt': 'Classify urgency and topic.'}),
                ('condition', 'Urgent?', "{{urgency}} == 'high'",
                 [('notify', 'Page on-call', {'channel': '{{oncall_channel}}'}),
                  ('end', 'Escalated', {})],
                 [('agent:support', 'Draft reply', {'prompt': 'Draft a reply citing the docs.'}),
                  ('http', 'Post reply to Zendesk', {'method': 'PUT',
                                                     'url': 'https://{{subdomain}}.zendesk.com/api/v2/tickets'}),
                  ('end', 'Answered', {})])]),
    dict(key='kpi', name='Weekly KPI digest', category='ANALYTICS',
         tags=('analytics', 'reporting', 'weekly'),
         description='Every Monday: queries the warehouse, summarizes the week, shares it.',
         variables={'digest_channel': '#leadership'},
         trigger=('monday', 'Every Monday 08:00', {'trigger': 'schedule', 'cron': '0 8 * * 1'}),
         steps=[('database', 'Query weekly metrics', {'query': 'SELECT * FROM weekly_kpis'}),
                ('agent:analyst', 'Summarize the week', {'prompt': 'Explain what moved and why.'}),
                ('parallel', [[('slack', 'Post digest', {'channel': '{{digest_channel}}'})],
                              [('gmail', 'Email leadership', {'to': 'leadership@'})]]),
                ('end', 'Digest sent', {})]),
    dict(key='blog', name='Blog post pipeline', category='CONTENT',
         tags=('content', 'blog', 'seo'),
         description='Researches a topic, drafts and edits a post, saves it to Notion.',
         variables={'word_count': 1200, 'tone': 'practical'},
         trigger=('brief', 'New content brief', {'trigger': 'webhook', 'source': 'notion'}),
         steps=[('agent:researcher', 'Research topic', {'prompt': 'Collect sources.'}),
                ('team', 'Draft and edit', {'task': 'Write {{word_count}} words, {{tone}} tone'}),
                ('notion', 'Save draft', {'database': 'Content calendar'}),
                ('notify', 'Tell the editor', {'channel': '#content'}),
                ('end', 'Draft ready', {})]),
    dict(key='invoices', name='Invoice reconciliation', category='DATA_PROCESSING',
         tags=('finance', 'stripe', 'sheets'),
         description='Matches Stripe payouts with the finance sheet and explains mismatches.',
         variables={'tolerance_cents': 100},
         trigger=('nightly', 'Nightly 02:00', {'trigger': 'schedule', 'cron': '0 2 * * *'}),
         steps=[('http', 'Fetch Stripe payouts', {'method': 'GET',
                                                  'url': 'https://api.stripe.com/v1/payouts'}),
                ('sheets', 'Read ledger', {'range': 'Ledger!A:F'}),
                ('code', 'Match payouts', {'language': 'python'}),
                ('condition', 'Mismatches?', '{{mismatches}} > 0',
                 [('agent:ops', 'Explain mismatches', {'prompt': 'Explain each mismatch.'}),
                  ('gmail', 'Email finance', {'to': 'finance@'}),
                  ('end', 'Reported', {})],
                 [('end', 'All matched', {})])]),
    dict(key='followup', name='Meeting follow-up', category='COMMUNICATION',
         tags=('meetings', 'crm', 'email'),
         description='After each customer call: summary, CRM notes and a recap email.',
         variables={'send_recap': True},
         trigger=('call', 'Call ended', {'trigger': 'webhook', 'source': 'calendar'}),
         steps=[('agent:scheduler', 'Summarize call', {'prompt': 'Summary and action items.'}),
                ('crm', 'Log notes', {'action': 'update', 'object': 'contact'}),
                ('delay', 'Wait before sending', {'seconds': 300}),
                ('gmail', 'Send recap', {'to': '{{attendees}}'}),
                ('end', 'Followed up', {})]),
    dict(key='churn', name='Churn risk alerts', category='ANALYTICS',
         tags=('customer-success', 'churn', 'alerts'),
         description='Daily: finds accounts with falling usage and drafts a check-in.',
         variables={'usage_drop': 0.3},
         trigger=('daily', 'Every day 07:00', {'trigger': 'schedule', 'cron': '0 7 * * *'}),
         steps=[('database', 'Accounts with falling usage', {'query': 'SELECT * FROM usage_7d'}),
                ('filter', 'Drop above threshold', {'expression': 'drop > {{usage_drop}}'}),
                ('agent:success', 'Assess risk', {'prompt': 'Rate churn risk; suggest a step.'}),
                ('condition', 'High risk?', "{{risk}} == 'high'",
                 [('notify', 'Alert the CSM', {'channel': '#cs-alerts'}),
                  ('end', 'Escalated', {})],
                 [('end', 'Logged', {})])]),
    dict(key='launch', name='Product launch social posts', category='MARKETING',
         tags=('marketing', 'social', 'launch'),
         description='Plans a launch, writes posts per channel and schedules them.',
         variables={'launch_date': '2025-03-01'},
         trigger=('manual', 'Launch requested', {'trigger': 'manual'}),
         steps=[('agent:marketer', 'Plan the launch', {'prompt': 'Plan messages per channel.'}),
                ('parallel', [[('agent:writer', 'Write LinkedIn post', {'prompt': 'LinkedIn'})],
                              [('agent:writer', 'Write X thread', {'prompt': 'X thread'})]]),
                ('delay', 'Wait for approval window', {'seconds': 600}),
                ('http', 'Schedule in Buffer', {'method': 'POST',
                                                'url': 'https://api.bufferapp.com/1/updates/create.json'}),
                ('end', 'Scheduled', {})]),
    dict(key='review', name='Pull request review bot', category='AUTOMATION',
         tags=('engineering', 'github', 'code-review'),
         description='Reviews each pull request and comments or asks for changes.',
         variables={'block_on': 'security'},
         trigger=('pr', 'Pull request opened', {'trigger': 'webhook', 'source': 'github'}),
         steps=[('http', 'Fetch diff', {'method': 'GET',
                                        'url': 'https://api.github.com/repos/{{repo}}/pulls'}),
                ('agent:engineer', 'Review changes', {'prompt': 'Review for bugs and risk.'}),
                ('condition', 'Blocking issues?', '{{blocking}} == true',
                 [('http', 'Request changes', {'method': 'POST',
                                               'url': 'https://api.github.com/repos/{{repo}}/reviews'}),
                  ('notify', 'Ping the author', {'channel': '#eng-reviews'})],
                 [('http', 'Approve', {'method': 'POST',
                                       'url': 'https://api.github.com/repos/{{repo}}/reviews'})]),
                ('end', 'Reviewed', {})]),
    dict(key='hygiene', name='CRM hygiene', category='AUTOMATION',
         tags=('crm', 'data-quality', 'weekly'),
         description='Weekly: finds duplicate contacts, merges them and reports the changes.',
         variables={'dry_run': False},
         trigger=('weekly', 'Every Sunday 23:00', {'trigger': 'schedule', 'cron': '0 23 * * 0'}),
         steps=[('crm', 'List contacts changed this week', {'action': 'list', 'object': 'contact'}),
                ('code', 'Find duplicates', {'language': 'python'}),
                ('loop', 'For each duplicate group', {'over': '{{groups}}'}),
                ('crm', 'Merge contacts', {'action': 'merge', 'object': 'contact'}),
                ('agent:ops', 'Write change report', {'prompt': 'List every merge.'}),
                ('end', 'Cleaned', {})]),
    dict(key='nps', name='NPS feedback analysis', category='ANALYTICS',
         tags=('nps', 'feedback', 'sentiment'),
         description='Scores NPS comments, logs them to a sheet and alerts on detractors.',
         variables={'detractor_max': 6},
         trigger=('survey', 'Survey response', {'trigger': 'webhook', 'source': 'typeform'}),
         steps=[('agent:support', 'Analyze comment', {'prompt': 'Sentiment and themes.'}),
                ('sheets', 'Append to NPS log', {'range': 'NPS!A:E'}),
                ('condition', 'Detractor?', '{{score}} <= {{detractor_max}}',
                 [('notify', 'Alert success team', {'channel': '#nps-detractors'}),
                  ('end', 'Alerted', {})],
                 [('end', 'Logged', {})])]),
    dict(key='intake', name='Document intake', category='DATA_PROCESSING',
         tags=('documents', 'extraction', 'ocr'),
         description='Extracts fields from emailed PDFs and stores them in the database.',
         variables={'mailbox': 'invoices@'},
         trigger=('mail', 'New email with attachment', {'trigger': 'email',
                                                        'mailbox': '{{mailbox}}'}),
         steps=[('code', 'Split attachments', {'language': 'python'}),
                ('agent:researcher', 'Extract fields', {'prompt': 'Extract vendor, total, date.'}),
                ('transform', 'Normalize amounts', {'expression': 'total * 100'}),
                ('database', 'Insert document', {'query': 'INSERT INTO documents ...'}),
                ('end', 'Stored', {})]),
    dict(key='incident', name='Incident status updates', category='COMMUNICATION',
         tags=('incidents', 'status-page', 'comms'),
         description='Turns incident updates into customer-facing messages on every channel.',
         variables={'status_channel': '#status'},
         trigger=('incident', 'Incident updated', {'trigger': 'webhook', 'source': 'pagerduty'}),
         steps=[('agent:writer', 'Write status update', {'prompt': 'Calm, factual update.'}),
                ('parallel', [[('slack', 'Post to status channel',
                                {'channel': '{{status_channel}}'})],
                              [('email', 'Email affected customers', {'list': 'affected'})],
                              [('http', 'Update status page', {'method': 'PATCH',
                                                               'url': 'https://api.statuspage.io/v1/incidents'})]]),
                ('end', 'Published', {})]),
    dict(key='competitors', name='Competitor watch', category='MARKETING',
         tags=('competitive-intel', 'research'),
         description='Weekly scan of competitor pages, compared and summarized in Notion.',
         variables={'competitors': 3},
         trigger=('friday', 'Every Friday 09:00', {'trigger': 'schedule', 'cron': '0 9 * * 5'}),
         steps=[('http', 'Fetch competitor pages', {'method': 'GET', 'url': 'https://{{site}}'}),
                ('agent:researcher', 'Compare changes', {'prompt': 'What changed and why.'}),
                ('notion', 'Write brief', {'database': 'Competitive intel'}),
                ('end', 'Brief written', {})]),
)

REGIONS = ('', '', '', ' (EMEA)', ' (NA)', ' (APAC)', ' v2', ' - enterprise', ' - SMB')


class Binding:
    """What a graph may point at in its organization: agents by archetype, teams, channels."""

    def __init__(self, agents=None, teams=None, integrations=None, channel_kind='slack'):
        self.agents = agents or {}          # archetype key -> [agent id]
        self.teams = teams or []            # [team id]
        self.integrations = integrations or {}  # provider -> integration id
        self.channel_kind = channel_kind    # 'slack' or 'gmail' for ('notify', ...) steps


def build(recipe, rng, agents=None, teams=None, integrations=None):
    """(nodes, edges, variables) of one workflow made from `recipe`, varied by `rng`."""
    binding = Binding(agents, teams, integrations,
                      channel_kind='slack' if rng.random() < 0.75 else 'gmail')
    counter = itertools.count(1)
    nodes, edges = [], []
    trigger_key, trigger_label, trigger_data = recipe['trigger']
    nodes.append(hub_graph.node(trigger_key, 'trigger', dict(trigger_data, label=trigger_label)))
    steps = list(recipe['steps'])
    if rng.random() < 0.3:
        steps.insert(0, ('transform', 'Normalize payload', {'expression': 'payload'}))
    _steps(steps, [(trigger_key, None)], nodes, edges, rng, binding, counter)
    hub_graph.place(nodes, edges)
    hub_graph.check(nodes, edges, where='seeded workflow %r' % recipe['key'])
    variables = dict(recipe['variables'])
    return nodes, edges, variables


def _steps(steps, preds, nodes, edges, rng, binding, counter):
    """Append `steps` after `preds` ([(node id, sourceHandle)]); returns the open ends."""
    for step in steps:
        kind = step[0]
        if kind == 'condition':
            _, label, expression, yes, no = step
            node_id = _add(nodes, edges, preds, 'condition', label,
                           {'expression': expression}, counter)
            ends = _steps(yes, [(node_id, 'true')], nodes, edges, rng, binding, counter)
            ends += _steps(no, [(node_id, 'false')], nodes, edges, rng, binding, counter)
            preds = ends
        elif kind == 'parallel':
            ends = []
            for branch in step[1]:
                ends += _steps(branch, preds, nodes, edges, rng, binding, counter)
            preds = ends
        else:
            node_type, data = _resolve(kind, step[2], rng, binding)
            node_id = _add(nodes, edges, preds, node_type, step[1], data, counter)
            preds = [] if node_type in hub_graph.END_TYPES else [(node_id, None)]
    return preds


def _resolve(kind, data, rng, binding):
    data = dict(data)
    if kind.startswith('agent:'):
        archetype = kind.split(':', 1)[1]
        pool = binding.agents.get(archetype) or [a for ids in binding.agents.values()
                                                 for a in ids]
        if pool:
            data['agentId'] = rng.choice(pool)
        data['archetype'] = archetype
        return 'agent', data
    if kind == 'team':
        if binding.teams:
            data['teamId'] = rng.choice(binding.teams)
            return 'team', data
        data['prompt'] = data.pop('task')  # no team to run it: one agent does the task
        return 'agent', data
    if kind == 'notify':
        kind = binding.channel_kind
        if kind == 'gmail':
            data = {'to': 'team@', 'subject': 'Workflow alert'}
    if kind in ('slack', 'gmail', 'notion', 'sheets', 'http') and kind in binding.integrations:
        data['integrationId'] = binding.integrations[kind]
    return kind, data


def _add(nodes, edges, preds, node_type, label, data, counter):
    node_id = '%s-%d' % (node_type, next(counter))
    nodes.append(hub_graph.node(node_id, node_type, dict(data, label=label)))
    for source, handle in preds:
        extra = {'sourceHandle': handle, 'label': 'Yes' if handle == 'true' else 'No'} \
            if handle else {}
        edges.append(hub_graph.edge(source, node_id, **extra))
    return node_id


def paths(nodes, edges, limit=8):
    """The distinct runs of a graph: lists of node ids in topological order, at most `limit`.

    A condition node passes control along the outgoing edges of one sourceHandle (or along all
    of them when its edges carry none); every other node along all its outgoing edges.
    """
    order = hub_graph.topological_order(nodes, edges)
    types = {n['id']: n['type'] for n in nodes}
    outgoing = defaultdict(list)
    for item in edges:
        outgoing[item['source']].append(item)
    choices = []
    for node_id in order:
        if types[node_id] == 'condition':
            handles = sorted({e.get('sourceHandle') or '' for e in outgoing[node_id]})
            if len(handles) > 1:
                choices.append((node_id, handles))
    result, seen = [], set()
    for combo in itertools.islice(itertools.product(*[h for _, h in choices]), 256):
        chosen = dict(zip([c for c, _ in choices], combo))
        active = set()
        run = []
        for node_id in order:
            if types[node_id] in hub_graph.START_TYPES or node_id in active:
                run.append(node_id)
                for item in outgoing[node_id]:
                    handle = chosen.get(node_id)
                    if handle is None or (item.get('sourceHandle') or '') == handle:
                        active.add(item['target'])
        key = tuple(run)
        if key not in seen:
            seen.add(key)
            result.append(run)
        if len(result) == limit:
            break
    return result
