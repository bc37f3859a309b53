"""`hub rls ...`: the row-level security policies that isolate tenants.

    $ hub rls install     # roles, auth stand-in, helpers, exact grants, policies (idempotent)
    $ hub rls status      # per table: RLS, policies, extra/missing privileges; exit 1 if not
    $ hub rls verify      # matrix + hardening checks, rolled back; exit 1 on a leak or mismatch
    $ hub rls uninstall   # asks; policies, helpers and grants gone: deny-all; roles stay
"""
import json

import click

from hub.cli.output import confirm, yes_option


@click.group()
def rls():
    """Row-level security: install, inspect and verify tenant isolation."""


@rls.command(short_help='Install the policies and what they need (idempotent).')
@click.option('--mode', type=click.Choice(['members', 'active']), default=None,
              help='members: a caller sees every organization they belong to (default for a '
                   'new install). active: only the organization of the organization_id claim, '
                   'none without it (cost follows the tenant, docs/rls.md). Default: keep the '
                   'installed mode.')
@click.option('--sql', 'as_sql', is_flag=True,
              help='Print what install would run, as SQL that decides from the catalog when it '
                   'runs (unchanged on a database where RLS is installed, not installed or half '
                   'installed); needs no database, writes nothing.')
@click.pass_obj
def install(session, mode, as_sql):
    """Create the roles, helpers, grants and policies that are missing (one transaction).

    Leaves anon, authenticated and service_role exactly the privileges the policies are written
    for, whatever default privileges the database had. Running it again changes nothing. On
    Supabase the real roles and auth functions are used. Then it revokes what the catalog
    audit finds in public and hub_private that needs no decision (EXECUTE on trigger
    functions, sequences), and names on stderr each violation that remains (a table without
    a model, a view that runs as its owner): docs/rls.md, "What the audit checks". With
    --sql, print it instead, for psql or a supabase/migrations/ file.

        $ hub rls install
        $ hub rls install --mode active   # one organization per request, from the JWT claim
        $ hub rls install --sql > supabase/migrations/20250301000000_hub_rls.sql
    """
    from hub import rls as hubrls

    if as_sql:
        from hub import migrate

        click.echo(migrate.script([('row-level security: what `hub rls install%s` runs'
                                    % (' --mode %s' % mode if mode else ''),
                                    hubrls.install_sql(mode))]), nl=False)
        return
    actions = hubrls.install(session.db, mode=mode)
    for action in actions:
        click.echo(action)
    if actions:
        click.echo('row-level security installed (%d change(s))' % len(actions), err=True)
    else:
        click.echo('row-level security is already installed: nothing to do', err=True)
    for violation in hubrls.violations(session.db):
        click.echo('remains: %s' % (violation,), err=True)


@rls.command(short_help='Remove policies, helpers and grants; roles stay.')
@yes_option('Do not ask before removing the policies.')
@click.pass_obj
def uninstall(session, yes):
    """Drop the policies and helpers and revoke the API roles' table access; RLS stays on.

    The roles anon, authenticated and service_role stay: they belong to the whole server.
    Asks first (the API loses its tenant isolation and its access), unless --yes.
    Example: hub rls uninstall --yes
    """
    from hub import rls as hubrls
    from hub.connection import redact

    if not yes and hubrls.installed(session.db):
        confirm('remove row-level security from %s (API callers lose their access and tenant '
                'isolation until `hub rls install`)?' % redact(session.url))
    actions = hubrls.uninstall(session.db)
    for action in actions:
        click.echo(action)
    click.echo('row-level security uninstalled' if actions
               else 'row-level security was not installed: nothing to do', err=True)


@rls.command(short_help='RLS and policies per table; exit 1 if incomplete.')
@click.option('--json', 'as_json', is_flag=True, help='Print the report as JSON.')
@click.pass_obj
def status(session, as_json):
    """Show RLS and policies per table and what differs; exit 1 if anything does.

    Differences include an API role's extra or missing privilege, a table in public without
    RLS, a reachable migration history, and a helper whose owner, settings or body changed.

        $ hub rls status --json
    """
    from hub import rls as hubrls

    report = hubrls.status(session.db)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo('%-22s %-3s %-6s  %-6s %-6s %-6s %-6s  %s' % (
            'table', 'rls', 'forced', 'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'missing'))
        for t in report['tables']:
            cells = [('yes' if t['policies'].get(cmd) else '-') for cmd in hubrls.COMMANDS]
            click.echo('%-22s %-3s %-6s  %-6s %-6s %-6s %-6s  %s' % (
                t['table'], 'on' if t['rls_enabled'] else 'off', 'yes' if t['rls_forced'] else 'no',
                *cells, '; '.join(t['missing'] + ['extra policy ' + e for e in t['extra']])))
        for line in report['missing']:
            click.echo('missing: %s' % line)
        click.echo('mode: %s' % report['mode'])
    if not report['complete']:
        click.echo('row-level security is incomplete: run `hub rls install`, then fix what it '
                   'names as remaining', err=True)
        raise click.exceptions.Exit(1)
    click.echo('row-level security is complete', err=True)


@rls.command(short_help='Run the isolation matrix (rolled back); exit 1 on a leak.')
@click.option('--json', 'as_json', is_flag=True,
              help='Print {"summary": {...}, "cases": [...]} as JSON.')
@click.pass_obj
def verify(session, as_json):
    """Run the isolation matrix in a rolled-back transaction; exit 1 on any leak or mismatch.

    Two organizations with rows in every table, each table x command x caller (member, admin,
    owner, another organization, a member of both, anon, no claims, service_role) and the
    attacks; then the hardening checks (privileges per table and role, TRUNCATE, the migration
    history, identity and curation columns, a stale claim, RLS on every table, the helpers and
    the temp-domain hijack in a fresh session): nothing is left in the database.

    Example: hub rls verify --json | jq '.summary | {ok, leaks, failures}'
    """
    from hub import rls_matrix

    report = rls_matrix.verify(session.db)
    if as_json:
        click.echo(json.dumps(verify_document(report), indent=2))
    else:
        click.echo(rls_matrix.format_report(report))
    if report['failures']:
        click.echo('%d leak(s) and %d other failure(s) in %d cases' % (
            len(report['leaks']), len(report['failures']) - len(report['leaks']),
            len(report['cases'])), err=True)
        raise click.exceptions.Exit(1)
    click.echo('%d cases, no leaks' % len(report['cases']), err=True)


def verify_document(report):
    """What `verify --json` prints: a summary for scripts and CI, then every case."""
    def case(c):
        return dict(c._asdict(), expected=list(c.expected), actual=list(c.actual))

    def brief(c):
        return {'table': c.table, 'command': c.command, 'actor': c.actor, 'label': c.label,
                'expected': list(c.expected), 'actual': list(c.actual)}

    summary = {'ok': not report['failures'], 'cases': len(report['cases']),
               'leaks': len(report['leaks']), 'failures': len(report['failures']),
               'tables': list(report['tables']), 'mode': report.get('mode'),
               'leaked': [brief(c) for c in report['leaks']],
               'failed': [brief(c) for c in report['failures'] if not c.leak]}
    return {'summary': summary, 'cases': [case(c) for c in report['cases']]}


commands = [rls]
