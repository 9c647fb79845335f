"""SymPy's xreplace and replace, visiting each distinct subexpression once.

A deep network's gradient repeats the same subexpressions (an error term, a unit's output) in many
places; SymPy's own walks rewrite every occurrence again, which for the explicit gradients of a
4-layer network is most of the time spent. Each rewrite here is a function of the subexpression
alone, so remembering it for the next occurrence gives the very expression SymPy's walk gives.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp


def xreplace(expr: sp.Basic, rule: dict) -> sp.Basic:
    """``expr.xreplace(rule)``, each distinct subexpression rewritten once."""
    if not rule:
        return expr
    done: dict = {}

    def visit(node):
        if node in done:
            return done[node]
        if node in rule:
            result = rule[node]
        else:
            args = tuple(visit(arg) if isinstance(arg, sp.Basic) else arg for arg in node.args)
            result = node.func(*args) if any(new is not old for new, old in zip(args, node.args)) else node
        done[node] = result
        return result

    return visit(expr)


def replace(expr: sp.Basic, query: Callable[[sp.Basic], bool], value: Callable[[sp.Basic], sp.Basic]) -> sp.Basic:
    """``expr.replace(query, value)`` for a callable query and value, each distinct subexpression once.

    As SymPy's walk: the arguments first, then the rebuilt node itself, unless it came back equal
    to an argument that was itself rewritten (which SymPy then leaves alone).
    """
    done: dict = {}

    def visit(node):
        if node in done:
            return done[node]
        rebuilt = node
        if node.args:
            args = tuple(visit(arg) for arg in node.args)
            if node.args != args:
                rebuilt = node.func(*args)
                if any(rebuilt == old and old != new for old, new in zip(node.args, args)):
                    done[node] = rebuilt
                    return rebuilt
        if query(rebuilt):
            new = value(rebuilt)
            if new is not None and new != rebuilt:
                rebuilt = new
        done[node] = rebuilt
        return rebuilt

    return visit(expr)
