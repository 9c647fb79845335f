"""symbp reproduce: run bundled examples as their texts did and set symbp's results beside the texts'."""

from __future__ import annotations

import difflib
import textwrap
from itertools import zip_longest

from symbp.errors import SymbpError
from symbp.examples import EXAMPLES
from symbp.examples.reproduce import REPRODUCTIONS, Outcome, reproduce

COLUMNS = ("example", "source reports", "symbp gets", "result", "command")
# The two prose columns wrap at these widths so the table fits a wide terminal.
PROSE_WIDTH = 44


def register(commands) -> None:
    parser = commands.add_parser(
        "reproduce", help="run bundled examples as their texts did and compare with what the texts report",
        description="Runs each example's reproduction (fast settings unless --full) and prints a table: "
        "example, what the source reports, what symbp gets, and the command that shows it.",
    )
    parser.add_argument("examples", nargs="*", metavar="EXAMPLE", help="example names (default: all)")
    parser.add_argument("--all", action="store_true", help="every example (the default when none is named)")
    parser.add_argument("--full", action="store_true", help="the texts' full settings (more epochs) where they differ")
    parser.add_argument("--data", metavar="DIR", help="folder of the MNIST IDX files, for the mnist example")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.set_defaults(run=run)


def _names(args) -> list[str]:
    if args.all or not args.examples:
        return list(REPRODUCTIONS)
    for name in args.examples:
        if name not in REPRODUCTIONS:
            close = difflib.get_close_matches(name, REPRODUCTIONS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"choose from {', '.join(REPRODUCTIONS)}"
            raise SymbpError(f"reproduce: no example '{name}'; {hint}")
    return list(dict.fromkeys(args.examples))


def _status(outcome: Outcome) -> str:
    return {True: "ok", False: "FAIL", None: "skipped"}[outcome.passed]


def _rows(outcomes: list[Outcome]) -> list[tuple[str, ...]]:
    return [(o.name, o.reported, o.obtained, _status(o), o.command) for o in outcomes]


def _plain_table(rows: list[tuple[str, ...]]) -> str:
    wrapped = [[textwrap.wrap(cell, PROSE_WIDTH) if column in (1, 2) else [cell] for column, cell in enumerate(row)]
               for row in rows]
    header = [[title] for title in COLUMNS]
    widths = [max(len(line) for row in [header, *wrapped] for line in row[column]) for column in range(len(COLUMNS))]
    lines = []
    for row in [header, *wrapped]:
        for parts in zip_longest(*row, fillvalue=""):
            lines.append("  ".join(part.ljust(width) for part, width in zip(parts, widths)).rstrip())
        if row is header:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _markdown_table(rows: list[tuple[str, ...]]) -> str:
    header = ("example", "source", "source reports", "symbp gets", "command")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, reported, obtained, status, command in rows:
        obtained = f"FAIL: {obtained}" if status == "FAIL" else obtained
        cells = (f"`{name}`", EXAMPLES[name].source, reported, obtained, f"`{command}`")
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def run(args) -> int:
    names = _names(args)
    outcomes = []
    for name in names:
        outcome = reproduce(name, full=args.full, data=args.data)
        outcomes.append(outcome)
        # One example gets its working shown; a whole run gets only the table.
        if len(names) == 1 and not args.markdown:
            for heading, lines in outcome.details:
                print(heading)
                for line in lines:
                    print(f"   {line}")
            print()
    rows = _rows(outcomes)
    print(_markdown_table(rows) if args.markdown else _plain_table(rows))
    return 1 if any(outcome.passed is False for outcome in outcomes) else 0
