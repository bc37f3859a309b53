"""Shared output helpers for the commands."""
import click


def emit(text, output=None):
    """`text` to the file `output` (an -o option; missing folders are made), or to stdout."""
    if not output:
        click.echo(text, nl=False)
        return
    make_folders(output)
    try:
        with open(output, 'w') as fh:
            fh.write(text)
    except OSError as exc:
        raise click.BadParameter('cannot write %s: %s' % (output, exc.strerror),
                                 param_hint='-o') from None


def check_output(output, param_hint='-o'):
    """Fail early (usage error, before any database work) when -o names an unwritable place.

    Missing folders are fine (make_folders makes them when writing, as `mkdir -p` would): the
    nearest folder that exists must be writable.
    """
    import os

    folder = os.path.dirname(os.path.abspath(output))
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        reason = '%s is not a folder' % folder
    elif not os.access(folder, os.W_OK):
        reason = 'folder %s not writable' % folder
    else:
        return
    raise click.BadParameter('cannot write %s: %s' % (output, reason), param_hint=param_hint)


def make_folders(output, param_hint='-o'):
    """Make the missing folders above the file `output`."""
    import os

    folder = os.path.dirname(os.path.abspath(output))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter('cannot write %s: %s' % (output, exc.strerror),
                                 param_hint=param_hint) from None


def yes_option(help='Do not ask for confirmation.'):
    """`-y/--yes` for a command that asks before destroying data (both spellings, always)."""
    return click.option('-y', '--yes', is_flag=True, help=help)


def confirm(question):
    """Ask `question` on stderr (stdout stays data); "no" or end of input aborts with exit 1."""
    click.confirm(question, abort=True, err=True)
