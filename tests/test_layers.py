"""The import graph of ``desra_basicsr``: no cycles, and no layer imports a layer above it.

The graph is read from the source with :mod:`ast` (nothing is imported): every ``import`` and ``from ... import``
of a ``desra_basicsr`` module, at module level (run on import) or inside a function (run on first use). The layers,
bottom to top, are declared in :data:`LAYERS`; a module may import its own layer and the layers below it. The
groups of one rank (:data:`LAYERS` lists them together) sit beside each other: they may import the ranks below, not
each other. Run this file as a script to print the layer-to-layer edges (:func:`layer_summary`).
"""
import ast
import os
import os.path as osp
import sys
from collections import Counter
from typing import Dict, Iterator, List, NamedTuple, Optional, Set, Tuple

PACKAGE = 'desra_basicsr'
ROOT = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), PACKAGE)

#: Ranks bottom to top; each rank holds groups that sit beside each other, each group names its modules (a name
#: covers the module or the sub-package of that name, relative to the package root).
LAYERS: Tuple[Tuple[Tuple[str, Tuple[str, ...]], ...], ...] = (
    (('base', ('__init__', 'bootstrap', 'compat', 'errors', 'constants', 'settings', 'utils', 'version', 'devices',
               'folders', 'image_io', 'checkpoints', 'demo_corpus')), ),
    (('detection', ('detection', )), ('zoo', ('zoo', ))),
    (('evaluation', ('evaluation', )), ),
    (('basicsr glue', ('registry', 'archs', 'data', 'models', 'metrics', 'inference', 'train')),
     ('localizer', ('localizer', )), ('tools', ('tools', )), ('restore', ('restore', ))),
    (('jobs', ('jobs', 'demo')), ),
    (('commands', ('commands', '__main__')), ),
)
#: Third-party packages the pure detection core does not import at module level (``desra --help`` and numpy-only
#: users stay light); :data:`DETECTION_GLUE` is the one detection module that adapts mmseg.
HEAVY_FRAMEWORKS = ('basicsr', 'mmseg', 'mmengine', 'mmcv')
DETECTION_GLUE = f'{PACKAGE}.detection.mmseg_segmenter'


class Import(NamedTuple):
    """One import of a package module by another."""
    source: str
    target: str
    line: int
    module_level: bool


def module_name(path: str) -> str:
    """Dotted name of a source file of the package (``__init__.py`` is the package itself)."""
    parts = osp.relpath(path, osp.dirname(ROOT))[:-3].split(os.sep)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def source_files() -> Dict[str, str]:
    """Every module of the package: dotted name -> file."""
    files = {}
    for folder, _, names in os.walk(ROOT):
        for name in names:
            if name.endswith('.py'):
                files[module_name(osp.join(folder, name))] = osp.join(folder, name)
    return files


def _imports_of(tree: ast.AST, own: str, is_package: bool) -> Iterator[Tuple[str, Optional[str], int, bool]]:
    """``(module, imported name or None, line, module level)`` of every import statement in ``tree``."""

    def visit(node: ast.AST, in_function: bool) -> Iterator[Tuple[str, Optional[str], int, bool]]:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, None, child.lineno, not in_function
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ''
                if child.level:
                    anchor = own.split('.') if is_package else own.split('.')[:-1]
                    anchor = anchor[:len(anchor) - (child.level - 1)]
                    base = '.'.join(anchor + ([base] if base else []))
                for alias in child.names:
                    yield base, alias.name, child.lineno, not in_function
            yield from visit(child, nested)

    yield from visit(tree, False)


def import_graph() -> List[Import]:
    """Every import of a package module by a package module (not the package root, which every import loads)."""
    files = source_files()
    edges = []
    for source, path in sorted(files.items()):
        with open(path, 'r', encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        for module, name, line, module_level in _imports_of(tree, source, path.endswith('__init__.py')):
            target = f'{module}.{name}' if name and f'{module}.{name}' in files else module
            if target in files and target != PACKAGE and target != source:
                edges.append(Import(source, target, line, module_level))
    return edges


def third_party_imports() -> List[Tuple[str, str, int]]:
    """``(module, top-level third-party package, line)`` of every module-level import outside the package."""
    found = []
    for source, path in sorted(source_files().items()):
        with open(path, 'r', encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        for module, _, line, module_level in _imports_of(tree, source, path.endswith('__init__.py')):
            top = module.split('.')[0]
            if module_level and top and top != PACKAGE:
                found.append((source, top, line))
    return found


def layer_of(module: str) -> Tuple[int, str]:
    """``(rank, group)`` of a package module.

    Raises:
        KeyError: For a module that :data:`LAYERS` does not place.
    """
    parts = module.split('.')
    first = parts[1] if len(parts) > 1 else '__init__'
    for rank, groups in enumerate(LAYERS):
        for group, names in groups:
            if first in names:
                return rank, group
    raise KeyError(f'{module}: not in any layer of tests/test_layers.py LAYERS; add it where it belongs')


def layer_violations(edges: List[Import]) -> List[str]:
    """Imports of a higher rank, or of a group beside the importer's, one line each."""
    problems = []
    for edge in edges:
        (rank, group), (target_rank, target_group) = layer_of(edge.source), layer_of(edge.target)
        if target_rank > rank or (target_rank == rank and target_group != group):
            where = 'module level' if edge.module_level else 'in a function'
            problems.append(f'{edge.source}:{edge.line} ({group}) imports {edge.target} ({target_group}), {where}')
    return problems


def find_cycles(edges: List[Import]) -> List[List[str]]:
    """The strongly connected components with more than one module of the module-level graph (Tarjan)."""
    graph: Dict[str, Set[str]] = {}
    for edge in edges:
        if edge.module_level:
            graph.setdefault(edge.source, set()).add(edge.target)
            graph.setdefault(edge.target, set())
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def layer_summary(edges: List[Import]) -> str:
    """The layer-to-layer edges with their import counts (module level + in functions), one line each."""
    counts: Counter = Counter()
    for edge in edges:
        (_, group), (_, target) = layer_of(edge.source), layer_of(edge.target)
        if group != target:
            counts[(group, target, edge.module_level)] += 1
    order = [group for groups in LAYERS for group, _ in groups]
    pairs = sorted({(a, b) for a, b, _ in counts}, key=lambda p: (order.index(p[0]), order.index(p[1])))
    return '\n'.join(f'{a} -> {b}: {counts[(a, b, True)]} module level + {counts[(a, b, False)]} in functions'
                     for a, b in pairs)


def test_every_module_has_a_layer():
    for module in source_files():
        layer_of(module)


def test_no_import_cycles_at_module_level():
    cycles = find_cycles(import_graph())
    assert not cycles, 'import cycles:\n' + '\n'.join(' <-> '.join(c) for c in cycles)


def test_no_layer_imports_a_layer_above_or_beside_it():
    problems = layer_violations(import_graph())
    assert not problems, f'{len(problems)} imports against the layers:\n' + '\n'.join(problems)


def test_detection_core_imports_no_framework_at_module_level():
    detection = f'{PACKAGE}.detection'
    problems = [f'{module}:{line} imports {top}' for module, top, line in third_party_imports()
                if (module == detection or module.startswith(detection + '.')) and module != DETECTION_GLUE
                and top in HEAVY_FRAMEWORKS]
    assert not problems, '\n'.join(problems)


def test_the_graph_reader_resolves_relative_absolute_and_function_level_imports():
    tree = ast.parse('from . import a\nfrom ..b import c\nimport x.y\n\ndef f():\n    from .d import e\n')
    found = list(_imports_of(tree, 'pkg.sub.mod', is_package=False))
    assert found == [('pkg.sub', 'a', 1, True), ('pkg.b', 'c', 2, True), ('x.y', None, 3, True),
                     ('pkg.sub.d', 'e', 6, False)]
    assert find_cycles([Import('a', 'b', 1, True), Import('b', 'a', 1, True), Import('b', 'c', 1, False),
                        Import('c', 'b', 1, True)]) == [['a', 'b']]


if __name__ == '__main__':
    graph = import_graph()
    print(layer_summary(graph))
    for problem in layer_violations(graph) + [' <-> '.join(c) for c in find_cycles(graph)]:
        print('violation:', problem, file=sys.stderr)
