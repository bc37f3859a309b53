"""Write docs/commands.md from the click definitions, so the reference cannot go stale.

    $ .venv/bin/python -m tools.command_reference            # rewrite docs/commands.md
    $ .venv/bin/python -m tools.command_reference --check    # exit 1 if it is out of date

tests/test_command_reference.py runs the check: a command, option or help text changed without
regenerating the file fails the suite.
"""
import sys
from pathlib import Path

import click

from hub.cli.main import cli

TARGET = Path(__file__).resolve().parent.parent / 'docs' / 'commands.md'

HEADER = """# Command reference

Generated from the command definitions by `python -m tools.command_reference`; do not edit by
hand (a test fails when this file and the commands disagree). Every command also answers `-h`.

Exit codes: 0 success; 1 failure (and `hub db status` with pending migrations, `hub db check`
with differences, `hub rls status` incomplete, `hub rls verify` with a leak); 2 bad usage or
configuration; 3 `hub db migrate --sql` with nothing pending (nothing written).
"""


def _walk(command, path, parent=None):
    ctx = click.Context(command, info_name=path[-1], parent=parent)
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            yield from _walk(command.get_command(ctx, name), path + [name], ctx)


def _options(ctx, command):
    rows = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or param is command.get_help_option(ctx):
            continue
        names, help_text = record
        rows.append('| `%s` | %s |' % (names.replace('|', '\\|'),
                                         (help_text or '').replace('|', '\\|').replace('\n', ' ')))
    return rows


def render():
    """The Markdown reference of every command, in command-path order."""
    parts = [HEADER]
    for path, command, ctx in _walk(cli, ['hub']):
        title = ' '.join(path)
        pieces = command.collect_usage_pieces(ctx)
        parts.append('## `%s`\n' % title)
        parts.append('```\n%s %s\n```\n' % (title, ' '.join(pieces)))
        if command.help:
            parts.append(click.unstyle(command.help).strip() + '\n')
        if isinstance(command, click.Group):
            subs = ['- [`%s %s`](#%s-%s): %s' % (
                title, name, '-'.join(path).replace(' ', '-'), name,
                command.get_command(ctx, name).get_short_help_str(limit=100))
                for name in sorted(command.list_commands(ctx))]
            parts.append('\n'.join(subs) + '\n')
        rows = _options(ctx, command)
        if rows:
            parts.append('| option | meaning |\n|---|---|\n' + '\n'.join(rows) + '\n')
    return '\n'.join(parts)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if '--check' in argv:
        current = TARGET.read_text() if TARGET.exists() else ''
        if current != text:
            print('%s is out of date: run `python -m tools.command_reference`' % TARGET,
                  file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print('wrote %s' % TARGET, file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
