"""`hub secrets ...`: the key that encrypts integration credentials.

    $ hub secrets status                          # key ids in use; does $HUB_SECRET_KEY open them?
    $ hub secrets rotate                          # embedded default: a new .hub/secret.key
    $ HUB_SECRET_KEY_OLD=<key in use> HUB_SECRET_KEY=<new key> hub secrets rotate

Keys are read from the environment, a key file or a hidden prompt, never from the command line
(where shell history and `ps` would keep them), and never printed: messages name key ids only.
"""
import json
import os
import sys

import click


@click.group()
def secrets():
    """The key that encrypts integration credentials: status and rotation."""


@secrets.command(short_help='Key ids in use; whether the key opens every credential.')
@click.option('--json', 'as_json', is_flag=True, help='Print the report as JSON.')
@click.pass_obj
def status(session, as_json):
    """Show which key ids the stored credentials use and whether the configured key
    ($HUB_SECRET_KEY, or .hub/secret.key on the embedded default) decrypts every one of them.
    Exit 1 when it does not, or when the credentials are under more than one key.

    Example: hub secrets status --json | jq .keys
    """
    from hub import crypto

    db = session.db
    embedded = crypto.is_embedded(db)
    key = crypto.load_key(embedded, create=False)  # status never generates a key
    box = None if key is None else crypto.Credentials(key, source=crypto.key_source(embedded))
    report = crypto.status(db, box)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo('%-14s %12s' % ('key id', 'integrations'))
        for kid, count in report['keys'].items():
            click.echo('%-14s %12s' % (kid, '{:,}'.format(count)))
        if report['unsealed']:
            click.echo('%-14s %12s' % ('(not sealed)', '{:,}'.format(report['unsealed'])))
    sealed = sum(report['keys'].values())
    given = report['key']
    if given is None:
        click.echo('no key configured (%s is not set and there is no key file)'
                   % crypto.KEY_ENV, err=True)
    elif given['fails']:
        click.echo('the key in %s (id %s) opens %d of %d credentials; e.g. integration %s does '
                   'not open' % (given['source'], given['kid'], given['decrypts'], sealed,
                                 given['fails'][0]), err=True)
    else:
        click.echo('the key in %s (id %s) opens all %d credentials'
                   % (given['source'], given['kid'], sealed), err=True)
    if len(report['keys']) > 1:
        click.echo('the credentials are under %d keys: move them to one with `hub secrets '
                   'rotate`' % len(report['keys']), err=True)
    if not report['ok']:
        raise click.exceptions.Exit(1)


@secrets.command(short_help='Re-encrypt every credential under a new key (one transaction).')
@click.option('--old-key-env', metavar='NAME', default='HUB_SECRET_KEY_OLD', show_default=True,
              help='Variable holding the key in use (several: comma-separated). '
                   'Unset on a terminal: asked for, without echo.')
@click.option('--new-key-env', metavar='NAME', default='HUB_SECRET_KEY', show_default=True,
              help='Variable holding the new key.')
@click.option('--json', 'as_json', is_flag=True, help='Print the result as JSON.')
@click.pass_obj
def rotate(session, old_key_env, new_key_env, as_json):
    """Re-encrypt every integration credential under a new key, in one transaction.

    Every credential is decrypted with the old key first: if one does not open, nothing is
    written. Then set the new key wherever the old one was kept (CI secrets, .env).

    On the embedded default with no $HUB_SECRET_KEY, a new key is generated and replaces
    .hub/secret.key (the previous one is kept as .hub/secret.key.old for older backups).

    \b
    Examples:
      hub secrets rotate                                   # embedded default
      export HUB_SECRET_KEY_OLD="$HUB_SECRET_KEY" HUB_SECRET_KEY="$(python -c
        'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
      hub secrets rotate
    """
    from hub import crypto
    from hub.errors import ConfigError

    db = session.db
    new_value = os.environ.get(new_key_env, '').strip()
    old_value = os.environ.get(old_key_env, '').strip()
    if not new_value and not old_value and crypto.is_embedded(db):
        result = crypto.rotate_key_file(db)
    else:
        if not new_value:
            raise ConfigError('$%s is not set: put the new key there (make one with %s) and the '
                              'key in use in $%s' % (new_key_env, crypto.MAKE_KEY, old_key_env))
        if not old_value:
            if not sys.stdin.isatty():
                raise ConfigError('$%s is not set: put the key the credentials use now there '
                                  '(ids in use: %s), or run this on a terminal to be asked'
                                  % (old_key_env, ', '.join(crypto.key_ids(db)) or 'none'))
            old_value = click.prompt('key in use now (input hidden)', hide_input=True,
                                     err=True)
        old_keys = crypto.parse_keys(old_value, '$%s' % old_key_env)
        new_key = crypto.parse_keys(new_value, '$%s' % new_key_env)
        if len(new_key) != 1:
            raise ConfigError('$%s holds %d keys; give one new key' % (new_key_env, len(new_key)))
        result = crypto.rotate(db, old_keys, new_key[0])
    if as_json:
        click.echo(json.dumps(result, indent=2))
    old_ids = ', '.join(result['from']) or 'none'
    if result['rotated']:
        click.echo('re-encrypted %d credential%s from key id %s to key id %s in one transaction'
                   % (result['rotated'], '' if result['rotated'] == 1 else 's', old_ids,
                      result['to']), err=True)
    else:
        click.echo('nothing to re-encrypt: all %d credentials already use key id %s'
                   % (result['unchanged'], result['to']), err=True)
    if 'key_file' in result:
        click.echo('the new key is in %s; the previous one is kept in %s for backups made '
                   'before now' % (result['key_file'], result['previous_key_file']), err=True)
    else:
        click.echo('now make $%s the key everywhere it is kept (CI secrets, .env) and drop $%s'
                   % (new_key_env, old_key_env), err=True)


commands = [secrets]
