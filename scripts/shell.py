"""`hub shell`: Python with the database connected and the models imported; a prompt or a script.

    $ hub shell                                   # a prompt (IPython when installed)
    $ echo "print(Workflow.select().count())" | hub shell
    $ hub shell -c "print(Organization.select().count())"
    $ hub shell report.py --since 2025-01-01      # a script file, with its own arguments
    $ hub shell --as <users.id> -c "print(Workflow.select().count())"   # what that tenant sees
    $ hub shell --as <users.id> --commit fix.py   # keep what the script wrote as that user
    $ hub shell --as <users.id> --org acme        # in one of their organizations (rls mode active)
    $ hub users --org acme                        # who to be: ids, e-mails, organizations

Piped input, -c CODE and FILE (or -) run with Python's script semantics, as `python -` does:
one module, the traceback and exit code 1 on an uncaught exception, `sys.exit(n)` exits n.
Under --as every transaction runs in the user's row-level-security identity, a statement the
policies deny raises and the session goes on, and writes are rolled back at the end unless
--commit is given (and the script succeeded). See docs/shell.md.
"""
import json
import sys

import click


@click.command(context_settings={'allow_interspersed_args': False})
@click.option('-c', 'code', metavar='CODE', help='Run CODE as a script (as python -c).')
@click.option('-i', '--interactive', is_flag=True,
              help='Show the prompt (after the script, if any) even when stdin is not a terminal.')
@click.option('--as', 'user_id', metavar='USER_ID',
              help="Run inside this user's row-level-security identity (role authenticated).")
@click.option('--org', metavar='ID|SLUG',
              help="With --as: act in this organization of the user's (the organization_id "
                   'claim); needed in rls mode active when the user has several.')
@click.option('--commit', is_flag=True,
              help='With --as: keep what the session wrote (default: roll it back at the end).')
@click.argument('script', required=False, metavar='[FILE|-]')
@click.argument('args', nargs=-1, type=click.UNPROCESSED, metavar='[ARGS]...')
@click.pass_context
def shell(ctx, code, interactive, user_id, org, commit, script, args):
    """Python with db, the models, enums and operations ready: a prompt, or a script to run.

    Without FILE, -c or piped input it opens a prompt. Example: hub shell --as USER_ID -c CODE
    """
    from hub import connection, console
    from hub.errors import ConfigError

    if commit and not user_id:
        raise ConfigError('--commit only applies with --as USER_ID (without --as every statement '
                          'commits as it runs)')
    if org and not user_id:
        raise ConfigError('--org only applies with --as USER_ID (without --as the session is '
                          'the owner and sees every organization)')
    source, filename, argv = _source(code, script, args, interactive)
    session = ctx.obj
    database = session.db
    namespace = console.namespace(database)
    banner = 'hub shell: %s; models, enums and operations imported; db is the database' % (
        connection.where(session.url))
    if not user_id:
        click.echo(banner, err=True)
        ctx.exit(_run(console, source, filename, argv, namespace, interactive))
    org_id, mode, why = console.active_organization(database, user_id, org)
    banner += ('; as user %s, %s, rls mode %s (%s)' % (
        user_id, 'organization %s (%s)' % (org_id, why) if org_id
        else 'every organization they belong to', mode,
        'writes are committed at the end' if commit
        else 'writes are rolled back at the end, --commit keeps them'))
    with console.tenant_session(database, user_id, commit, org_id) as tenant:
        click.echo(banner, err=True)
        status = _run(console, source, filename, argv, namespace, interactive)
        if status:
            tenant.discard()
    if tenant.outcome == 'committed':
        click.echo('hub shell: committed what was done as user %s' % user_id, err=True)
    elif tenant.wrote:
        click.echo('hub shell: rolled back what was written as user %s%s' % (
            user_id, ' (the session failed)' if commit else '; --commit keeps it'), err=True)
    ctx.exit(status)


def _source(code, script, args, interactive):
    """(source, filename, argv) to run, or (None, None, None) for the prompt alone."""
    from hub.errors import ConfigError

    if code is not None:
        return code, '<string>', ['-c'] + ([script] if script else []) + list(args)
    if script is not None and script != '-':
        try:
            with open(script, 'rb') as handle:
                return handle.read(), script, [script] + list(args)
        except OSError as exc:
            raise ConfigError('cannot read the script %r: %s' % (script, exc.strerror)) from None
    if script == '-' or not (interactive or sys.stdin.isatty()):
        return sys.stdin.read(), '<stdin>', [script or '-'] + list(args)
    return None, None, None


def _run(console, source, filename, argv, namespace, interactive):
    status = 0
    if source is not None:
        status = console.run(source, filename, namespace, argv)
    if source is None or interactive:
        status = console.interact(namespace)
    return status


@click.command('users')
@click.option('--org', metavar='ID|SLUG', help='Only the members of this organization.')
@click.option('--json', 'as_json', is_flag=True, help='Print a JSON array instead of a table.')
@click.pass_obj
def users(session, org, as_json):
    """List the users and their organizations: who `hub shell --as USER_ID` can be.

    Example: hub users --org acme
    """
    from hub import console

    rows = console.list_users(session.db, org)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo('no users%s; `hub seed` adds some' % (' in %s' % org if org else ''), err=True)
        return
    table = [('id', 'email', 'organizations (role)')] + [
        (row['id'], row['email'], ', '.join('%s (%s)' % pair for pair in row['organizations']))
        for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(2)]
    for line in table:
        click.echo('%s  %s  %s' % (line[0].ljust(widths[0]), line[1].ljust(widths[1]),
                                   line[2]))


commands = [shell, users]
