"""docs/commands.md is generated from the click definitions and must match them."""
from tools import command_reference


def test_the_command_reference_is_up_to_date():
    assert command_reference.TARGET.read_text() == command_reference.render(), (
        'docs/commands.md is stale: run `python -m tools.command_reference`')


def test_the_reference_names_every_command():
    text = command_reference.render()
    for path, command, _ in command_reference._walk(command_reference.cli, ['hub']):
        assert '## `%s`' % ' '.join(path) in text
