"""The shape of the package (docs/architecture.md): the imports inside hub/ form no cycle, the
library never imports click, and every library exception lives in hub.errors and is exported
from hub.

The graph is read with ast, not by importing: a module-level import and one inside a function
are both edges (a lazy import that closes a cycle is still two modules that need each other).
`from hub.seed import catalog` is an edge to hub.seed.catalog, the module named; the parent
package's __init__ that Python runs on the way is not counted, or every submodule would form a
cycle with a package that imports it lazily.
"""
import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import hub
from hub import errors

HUB = Path(hub.__file__).resolve().parent


def _module_name(path):
    parts = list(path.relative_to(HUB.parent).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


MODULES = {_module_name(p): p for p in sorted(HUB.rglob('*.py'))}


def _resolve(name):
    """The hub module `name` stands for (hub.cli, the command line on top, is left out)."""
    if name == 'hub.cli' or name.startswith('hub.cli.'):
        return None
    return name if name in MODULES else None


def _imports(module, path):
    """(imported module, line) for every import of a hub module in `path`, at any depth."""
    package = module if path.name == '__init__.py' else module.rpartition('.')[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            for alias in node.names:
                child = '%s.%s' % (base, alias.name)
                yield (child if child in MODULES else base), node.lineno


def import_graph():
    """{module: {imported hub module: first line}} for every module of hub/."""
    graph = {}
    for module, path in MODULES.items():
        edges = graph.setdefault(module, {})
        for name, line in _imports(module, path):
            target = _resolve(name)
            if target is not None and target != module:
                edges.setdefault(target, line)
    return graph


def find_cycle(graph):
    """One cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_imports_inside_hub_form_no_cycle():
    graph = import_graph()
    assert 'hub.lifecycle' in graph and 'hub.migrate' in graph['hub.lifecycle']  # it reads edges
    cycle = find_cycle(graph)
    assert cycle is None, 'import cycle: ' + ' -> '.join(
        '%s (line %d)' % (a, graph[a][b]) for a, b in zip(cycle, cycle[1:])) + ' -> ' + cycle[0]


def test_the_cycle_finder_names_a_cycle_through_a_lazy_import(tmp_path):
    """The check itself can fail: a function-level import back is a cycle, and is named."""
    graph = {'hub.a': {'hub.b': 3}, 'hub.b': {'hub.c': 5}, 'hub.c': {'hub.a': 40}, 'hub.d': {}}
    assert find_cycle(graph) == ['hub.a', 'hub.b', 'hub.c', 'hub.a']
    assert find_cycle({'hub.a': {'hub.b': 1}, 'hub.b': {}}) is None
    lazy = tmp_path / 'lazy.py'
    lazy.write_text('def f():\n    from hub import rls\n    import hub.migrate\n')
    assert sorted(_imports('hub.lazy', lazy)) == [('hub.migrate', 3), ('hub.rls', 2)]


def test_the_layers_hold():
    """The low modules stay low: what docs/architecture.md draws under migrate and rls."""
    graph = import_graph()

    def below(module):
        seen, todo = set(), [module]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert below('hub.errors') == set()
    assert below('hub.locks') == {'hub.errors'}  # its exceptions only
    assert below('hub.catalog') == set()
    assert 'hub.rls' not in below('hub.migrate') and 'hub.schema' not in below('hub.migrate')
    assert 'hub.rls_matrix' not in below('hub.rls')
    assert 'hub.seed' not in below('hub.crypto')


def test_the_library_never_imports_click():
    """Commands live in hub.cli (scripts/); the library raises HubError and prints nothing."""
    offenders = ['%s:%d' % (module, line) for module, path in MODULES.items()
                 for name, line in _imports(module, path)
                 if name == 'click' or name.startswith('click.')]
    assert offenders == []


def _library_modules():
    for info in pkgutil.walk_packages(hub.__path__, 'hub.'):
        if info.name.startswith('hub.cli') or info.name == 'hub.__main__':
            continue
        yield importlib.import_module(info.name)


def test_every_library_exception_lives_in_hub_errors_and_is_exported():
    found = {}
    for module in _library_modules():
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, errors.HubError):
                found.setdefault(value, set()).add('%s.%s' % (module.__name__, name))
    assert errors.RuleViolation in found  # the walk reaches the classes it checks
    strays = sorted('%s (%s)' % (cls.__qualname__, cls.__module__) for cls in found
                    if cls.__module__ != 'hub.errors')
    assert strays == [], 'define these in hub/errors.py: %s' % ', '.join(strays)
    unexported = sorted(cls.__name__ for cls in found if getattr(hub, cls.__name__, None) is not cls)
    assert unexported == [], 'add to hub/__init__.py _EXPORTS: %s' % ', '.join(unexported)


def test_the_old_homes_of_the_moved_exceptions_still_work():
    """Users' scripts catch hub.rules.RuleViolation and hub.rls.RlsError."""
    from hub import marketplace, rls, rules

    assert rules.RuleViolation is errors.RuleViolation is hub.RuleViolation
    assert rls.RlsError is errors.RlsError is hub.RlsError
    assert marketplace.FixtureError is errors.FixtureError is hub.FixtureError


def _error_of(db, sql):
    with pytest.raises(Exception) as caught:
        with db.atomic():  # a savepoint: the test's transaction survives the error
            db.execute_sql(sql)
    return caught.value


def test_the_cli_tells_a_missing_table_or_type_by_sqlstate_not_by_text(txn):
    """`run hub db migrate first` follows 42P01 and a missing type, never a missing role (42704
    as well, where migrating would not help)."""
    from hub.cli.main import _missing_schema

    assert _missing_schema(_error_of(txn, 'SELECT 1 FROM public.hub_no_such_table'))
    assert _missing_schema(_error_of(txn, "SELECT 'x'::public.hub_no_such_type"))
    assert not _missing_schema(_error_of(txn, 'ALTER ROLE hub_no_such_role_x9 NOLOGIN'))
    assert not _missing_schema(_error_of(txn, 'SELECT 1/0'))


# -- the "newer database" guard, now that the writers can reach hub.migrate without a cycle ------

from tests.test_cli_robustness import newer, state  # noqa: E402,F401  (a fixture and its check)


def test_every_library_writer_refuses_a_database_newer_than_the_code(newer):
    """Not only the CLI's WRITING list: a script calling the library is refused as well."""
    from cryptography.fernet import Fernet

    from hub import crypto, lifecycle, marketplace, rls, snapshot
    from hub import connection
    from hub.errors import DatabaseNewer

    url, secret = newer
    before = state(url)
    database = connection.bind(connection.open_database(url))
    try:
        org = database.execute_sql('SELECT id FROM organizations LIMIT 1').fetchone()[0]
        doc = snapshot.export_organization(database, org)
        calls = {
            'lifecycle.prepare': lambda: lifecycle.prepare(database),
            'lifecycle.reset': lambda: lifecycle.reset(database),
            'lifecycle.rollback': lambda: lifecycle.rollback(database, all=True),
            'rls.install': lambda: rls.install(database),
            'rls.uninstall': lambda: rls.uninstall(database),
            'marketplace.sync': lambda: marketplace.sync(database),
            'snapshot.import_organization':
                lambda: snapshot.import_organization(database, doc, as_new=True, link_users=True),
            'crypto.rotate': lambda: crypto.rotate(database, secret, Fernet.generate_key()),
        }
        accepted = []
        for name, call in calls.items():
            try:
                call()
            except DatabaseNewer:
                continue
            accepted.append(name)
        assert accepted == []
    finally:
        database.close()
    assert state(url) == before
