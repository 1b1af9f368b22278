"""Code shape: no function over 60 lines and none with more than 8 parameters in pose/, training/, app/.

Lines count from ``def`` to the function's last line, docstring included; parameters count every name
a caller can pass (``self``/``cls`` excepted, ``*args``/``**kwargs`` one each).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES, MAX_PARAMETERS = 60, 8

# Known exceptions, each with its reason. Add to this list only with a reason a reviewer accepts.
ALLOWED_LONG: set[tuple[str, str]] = set()
ALLOWED_PARAMETERS = {
    # One plain array (or file) per argument, all of the same N people, as every caller holds them; a
    # record type would re-wrap pose.evaluation.predictions.DatasetPredictions (see the comment there).
    ("pose/evaluation/__init__.py", "summarize"),
}


def _functions():
    for folder in ("pose", "training", "app"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield path.relative_to(ROOT).as_posix(), node


def _parameters(node: ast.FunctionDef) -> int:
    args = node.args
    names = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    count = len(names) + (args.vararg is not None) + (args.kwarg is not None)
    return count - (bool(names) and names[0].arg in ("self", "cls"))


def test_no_function_is_longer_than_60_lines():
    long = {
        (path, node.name): node.end_lineno - node.lineno + 1
        for path, node in _functions()
        if node.end_lineno - node.lineno + 1 > MAX_LINES
    }
    assert {key: n for key, n in long.items() if key not in ALLOWED_LONG} == {}


def test_no_function_takes_more_than_8_parameters():
    many = {
        (path, node.name): _parameters(node)
        for path, node in _functions()
        if _parameters(node) > MAX_PARAMETERS
    }
    assert {key: n for key, n in many.items() if key not in ALLOWED_PARAMETERS} == {}


@pytest.mark.parametrize(
    ("source", "lines", "parameters"),
    [
        ("def f(a, b, *c, d, **e):\n    pass\n", 2, 5),
        ("class A:\n    def m(self, a):\n        '''doc'''\n        return a\n", 3, 1),
    ],
)
def test_the_counts_are_what_the_rules_mean(source, lines, parameters):
    node = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef))
    assert (node.end_lineno - node.lineno + 1, _parameters(node)) == (lines, parameters)
