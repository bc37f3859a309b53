"""`hub seed`: a realistic, deterministic database in one command.

    $ hub seed                                   # embedded default: 5 organizations, small
    $ hub seed --orgs 50 --scale medium --as-of 2025-01-31
    $ hub seed --orgs 51 --as-of 2025-01-31      # adds organization 51 only
    $ hub seed --reset --yes --json | jq .total_rows
    $ hub seed --sql supabase/seed.sql --orgs 10 --as-of 2025-01-31   # no database needed

A thin wrapper over `hub.seed.seed_database`: it parses options, shows progress on stderr (a
bar on a terminal; otherwise, as in CI logs, a line every 5 s or $HUB_PROGRESS_SECONDS) and
prints the table (or JSON) on stdout.
"""
import json
import os
import sys
import time

import click

from hub.cli.output import check_output, make_folders

#: Without a terminal, a progress line every this many seconds ($HUB_PROGRESS_SECONDS).
PROGRESS_SECONDS = 5.0
PROGRESS_ENV = 'HUB_PROGRESS_SECONDS'
SCALE_HELP = ('Volumes per organization: tiny ~55 rows, small ~430, medium ~4,000, '
              'large ~40,000 (mostly executions).')
#: Rows per organization of each scale, for the estimate shown before a large seed.
ROWS_PER_ORG = {'tiny': 55, 'small': 430, 'medium': 4000, 'large': 40000}
#: A seed estimated above this many rows asks first (or needs --yes): ~1 minute or more.
ASK_ROWS = 10000000


class _Bar:
    """Progress on stderr: a click progress bar on a terminal, else (CI logs, pipes) a line
    every PROGRESS_SECONDS, since a bar redrawn with carriage returns is one unreadable line
    in a log file and click draws nothing there but the label."""

    def __init__(self, enabled, stream=None, interval=None, clock=time.monotonic):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = _interval() if interval is None else interval
        self.clock = clock
        self.bar = None
        self.started = self.last = None

    def __call__(self, added, total, rows):
        if not self.enabled or not total:
            return
        if not self.tty:
            return self._line(added, total, rows)
        if self.bar is None:
            self.bar = click.progressbar(length=total, label='seeding %d organization%s'
                                         % (total, '' if total == 1 else 's'),
                                         file=self.stream, show_pos=True, show_eta=True)
            self.bar.__enter__()
        self.bar.update(added - self.bar.pos)

    def _line(self, added, total, rows):
        now = self.clock()
        if self.started is None:
            self.started = self.last = now
            click.echo('seeding {:,} organization{}'.format(total, '' if total == 1 else 's'),
                       file=self.stream)
            return
        if now - self.last < self.interval and added < total:
            return
        self.last = now
        rate = rows / (now - self.started) if now > self.started else 0.0
        click.echo('seeded {:,} of {:,} organizations ({:.0%}), {:,.0f} rows/s'.format(
            added, total, added / total, rate), file=self.stream)

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _interval():
    value = os.environ.get(PROGRESS_ENV, '').strip()
    try:
        seconds = float(value) if value else PROGRESS_SECONDS
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also refuses nan
        from hub.errors import ConfigError
        raise ConfigError('$%s must be a number of seconds (e.g. 5); got %r'
                          % (PROGRESS_ENV, value))
    return seconds


@click.command()
@click.option('--orgs', type=click.IntRange(min=1), default=5, show_default=True,
              help='How many organizations the seed has (present ones are kept).')
@click.option('--scale', type=click.Choice(['tiny', 'small', 'medium', 'large'],
                                           case_sensitive=False),
              default='small', show_default=True, help=SCALE_HELP)
@click.option('--seed', 'seed_value', type=int, default=42, show_default=True,
              help='Random seed: the same options give byte-identical data.')
@click.option('--as-of', type=click.DateTime(formats=['%Y-%m-%d']), metavar='YYYY-MM-DD',
              help='Timestamps fall in the weeks before this date (00:00 UTC). '
                   'Default: today (UTC).')
@click.option('--reset', is_flag=True,
              help='Empty every table first (all organizations, users and templates).')
@click.option('--scenario', metavar='NAME',
              help='Load this curated organization of fixtures/scenarios/ instead of random ones '
                   '(support-escalation, content-pipeline).')
@click.option('-y', '--yes', is_flag=True,
              help='Do not ask before --reset or a seed of more than 10,000,000 rows.')
@click.option('-q', '--quiet', is_flag=True, help='No progress, notes or table.')
@click.option('--json', 'as_json', is_flag=True, help='Print the summary as JSON.')
@click.option('--sql', 'sql_file', type=click.Path(dir_okay=False, writable=True), metavar='FILE',
              help='Write the seed as a data-only SQL file (multi-row INSERTs) instead of into a '
                   'database; needs no database, same options give the same bytes.')
@click.option('--auth-users', is_flag=True,
              help='With --sql: users get uuid ids and Supabase Auth users (auth.users, '
                   'auth.identities), as `hub seed` gives them on a database with Supabase Auth.')
@click.option('--allow-existing-users', is_flag=True,
              help='Seed even where the database holds users hub seed did not create (real '
                   'Supabase Auth accounts, users with real-looking e-mails); seeded accounts '
                   'sign in with a published password. With --sql --auth-users: leave the '
                   'file\'s check for such users out.')
@click.pass_context
def seed(ctx, orgs, scale, seed_value, as_of, reset, scenario, yes, quiet, as_json,
         sql_file, auth_users, allow_existing_users):
    """Fill the database with organizations, users, agents, teams, workflows and executions.

    Migrates the database if needed, installs the row-level-security policies if missing and
    loads the template marketplace first. Running it again with the same options adds nothing;
    a larger --orgs adds only the new organizations.

    With --sql FILE nothing is connected to: FILE gets the rows this command would write into
    an empty database (marketplace included), for a database built by `hub db sql`, e.g. as
    Supabase's supabase/seed.sql, loaded by `supabase db reset`.

    Integration credentials are encrypted with $HUB_SECRET_KEY (generated and kept in .hub/
    for the embedded database; required for any other, and for --sql).

    Example: hub seed --orgs 50 --scale medium --as-of 2025-01-31

    Example: hub seed --sql supabase/seed.sql --orgs 10 --as-of 2025-01-31 --auth-users

    A database holding users hub seed did not create is refused (seeded accounts have a
    published password) unless --allow-existing-users. Example: hub seed --allow-existing-users
    """
    from hub import crypto, seed as seeder
    from hub.connection import redact

    session = ctx.obj
    _refuse_ignored(ctx, scenario)
    if not scenario:
        _confirm_size(orgs, scale, yes)
    say = (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
    bar = _Bar(enabled=not quiet and not as_json)
    if sql_file or auth_users:
        return _seed_file(sql_file, auth_users, orgs, scale, seed_value, as_of, reset, scenario,
                          quiet, as_json, bar, _file_credentials(session, say),
                          allow_existing_users)
    db = session.db
    # Checked before the question: a run that cannot encrypt must not ask, nor delete.
    crypto.key_for(db)
    if reset and not yes:
        click.confirm('delete every organization, user and template in %s before seeding?'
                      % redact(session.url), abort=True, err=True)
    try:
        result = seeder.seed_database(
            db, orgs=orgs, scale=scale, seed=seed_value,
            as_of=as_of.date() if as_of else None, reset=reset, progress=bar,
            notify=say, scenario=scenario, allow_existing_users=allow_existing_users)
    except seeder.Interrupted as exc:
        bar.close()
        click.echo(interrupted_line(exc.committed, exc.rolled_back), err=True)
        ctx.exit(130)
    finally:
        bar.close()
    if as_json:
        click.echo(json.dumps(dict(result.as_dict(), database=redact(session.url)), indent=2))
        return
    if result.scenario and not result.added:
        say('nothing to add: scenario %s is already loaded' % result.scenario)
        return
    if not result.added:
        say('nothing to add: all %d organizations of seed %d are there; use --reset to '
            'start over or --orgs to add more' % (result.orgs, result.seed))
        return
    if result.kept:
        say('kept %d organization%s of seed %d already in the database'
            % (result.kept, '' if result.kept == 1 else 's', result.seed))
    if not quiet:
        click.echo(format_table(result))


def _file_credentials(session, say):
    """$HUB_SECRET_KEY; else, on the embedded default (no URL given), the project's own key
    (.hub/secret.key, made if missing), so the file matches what `hub seed` writes there."""
    from hub import crypto

    if os.environ.get(crypto.KEY_ENV, '').strip():
        return None  # hub.seed.sqlfile reads it
    if session.url_option or os.environ.get('DATABASE_URL'):
        return None  # another database: its key is not ours to guess (sqlfile says so)
    credentials = crypto.Credentials(crypto.load_key(embedded=True),
                                     source=crypto.key_source(True))
    say('encrypting integration credentials with the embedded default\'s key, %s (%s=... '
        'for another)' % (credentials.source, crypto.KEY_ENV))
    return credentials


def _seed_file(path, auth_users, orgs, scale, seed_value, as_of, reset, scenario, quiet,
               as_json, bar, credentials=None, allow_existing_users=False):
    from hub.errors import ConfigError
    from hub.seed import sqlfile

    if not path:
        raise ConfigError('--auth-users applies to --sql FILE only; `hub seed` into a database '
                          'adds Auth users wherever the database has Supabase Auth')
    for flag, given in (('--reset', reset), ('--scenario', scenario)):
        if given:
            raise ConfigError('%s cannot be used with --sql: the file is loaded into an empty '
                              'database built by `hub db sql` (drop %s)' % (flag, flag))
    check_output(path, param_hint='--sql')
    make_folders(path, param_hint='--sql')
    try:
        result = sqlfile.write_file(path, orgs=orgs, scale=scale, seed=seed_value,
                                    as_of=as_of.date() if as_of else None,
                                    auth_users=auth_users, progress=bar,
                                    credentials=credentials,
                                    allow_existing_users=allow_existing_users)
    finally:
        bar.close()
    if as_json:
        click.echo(json.dumps(dict(result.as_dict(), file=path), indent=2))
    elif not quiet:
        click.echo(format_table(result))
        click.echo('wrote %s' % path, err=True)


def interrupted_line(committed, rolled_back):
    """The one line a Ctrl-C while loading leaves: what stays, and whether a batch rolled back."""
    stays = ('no organization was committed' if not committed else
             '{:,} organization{} committed stay{}'.format(
                 committed, '' if committed == 1 else 's', 's' if committed == 1 else ''))
    batch = ('the batch in progress was rolled back' if rolled_back
             else 'no batch was in progress')
    return 'interrupted: %s, %s; run the same command again to add the rest' % (stays, batch)


def _refuse_ignored(ctx, scenario):
    """Options that --scenario would ignore are refused, not silently dropped."""
    from click.core import ParameterSource
    from hub.errors import ConfigError

    if not scenario:
        return
    for name, flag in (('orgs', '--orgs'), ('scale', '--scale')):
        if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None):
            raise ConfigError('%s cannot be used with --scenario: a scenario is one curated '
                              'organization of fixed size (drop %s)' % (flag, flag))


def _confirm_size(orgs, scale, yes):
    """Ask before a seed estimated above ASK_ROWS rows; without a terminal, --yes is needed."""
    from hub.errors import ConfigError

    rows = orgs * ROWS_PER_ORG[scale.lower()]
    if rows <= ASK_ROWS or yes:
        return
    what = ('--orgs {:,} --scale {} is about {:,} rows'.format(orgs, scale.lower(), rows))
    if not sys.stdin.isatty():
        raise ConfigError('%s (more than {:,}); add --yes to seed it anyway, or choose fewer '
                          'organizations or a smaller scale'.format(ASK_ROWS) % what)
    click.confirm('%s; continue?' % what, abort=True, err=True)


def format_table(result):
    """Rows per table, then the total and the rate."""
    width = max(len(name) for name in result.rows)
    lines = ['%s  %10s' % ('table'.ljust(width), 'rows')]
    for name, count in result.rows.items():
        lines.append('%s  %10s' % (name.ljust(width), '{:,}'.format(count)))
    lines.append('%s  %10s' % ('total'.ljust(width), '{:,}'.format(result.total_rows)))
    if result.scenario:
        what = 'scenario %s' % result.scenario
    else:
        what = '%d organization%s (%s, seed %d, as of %s)' % (
            result.added, '' if result.added == 1 else 's', result.scale, result.seed,
            result.as_of.isoformat())
    lines.append('%s in %.1f s: %s rows/s' % (what, result.seconds,
                                             '{:,.0f}'.format(result.rows_per_second)))
    return '\n'.join(lines)


commands = [seed]
