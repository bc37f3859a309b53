"""Shared output helpers for the commands."""
import click


def emit(text, output=None):
    """`text` to the file `output` (an -o option), or to stdout when none is given."""
    if not output:
        click.echo(text, nl=False)
        return
    try:
        with open(output, 'w') as fh:
            fh.write(text)
    except OSError as exc:
        raise click.BadParameter('cannot write %s: %s' % (output, exc.strerror),
                                 param_hint='-o') from None


def check_output(output):
    """Fail early (usage error, before any database work) when -o names an unwritable place."""
    import os

    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        reason = 'no such folder' if not os.path.isdir(folder) else 'folder not writable'
        raise click.BadParameter('cannot write %s: %s' % (output, reason), param_hint='-o')


def yes_option(help='Do not ask for confirmation.'):
    """`-y/--yes` for a command that asks before destroying data (both spellings, always)."""
    return click.option('-y', '--yes', is_flag=True, help=help)


def confirm(question):
    """Ask `question` on stderr (stdout stays data); "no" or end of input aborts with exit 1."""
    click.confirm(question, abort=True, err=True)
