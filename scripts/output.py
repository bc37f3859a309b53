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
