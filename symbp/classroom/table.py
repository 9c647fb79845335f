"""answers.csv: one row a student (id, name, variant) and one column a quantity, in the order the sheet asks.

The same file, filled in by students or exported from a platform, is what ``symbp grade`` reads.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from symbp.classroom.answers import answers_of
from symbp.errors import SymbpError

FIXED = ("student_id", "name", "variant")


def answers_table(assigned) -> str:
    """The CSV text of every student's expected answers (``assigned``: roster.Assigned, in roster order)."""
    columns = [answer.name for answer in answers_of(assigned[0].sheet)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FIXED, *columns])
    for entry in assigned:
        values = {answer.name: answer.value for answer in answers_of(entry.sheet)}
        writer.writerow([entry.student.id, entry.student.name, entry.variant,
                         *(f"{values[name]:.12g}" for name in columns)])
    return out.getvalue()


def read_answers(path, columns: list[str]) -> list[tuple[str, int, dict[str, float | None]]]:
    """(student id, variant, answers by column) for each row; a blank or unreadable cell is None."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise SymbpError(f"ANSWERS: cannot read {path}: {error.strerror}; give the answers.csv file") from None
    except UnicodeDecodeError as error:
        raise SymbpError(f"ANSWERS: {path} is not UTF-8 text (byte {error.start}); save it as UTF-8 CSV") from None
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows:
        raise SymbpError(f"ANSWERS: {path} is empty; give the answers.csv that symbp worksheet --roster wrote")
    header = [cell.strip() for cell in rows[0]]
    missing = [name for name in ("student_id", "variant", *columns) if name not in header]
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise SymbpError(f"ANSWERS: {path} lacks the columns {shown}; start from the answers.csv of the same "
                         "spec (symbp worksheet SPEC --roster) and keep every column, blank where unanswered")
    found = []
    for line, row in enumerate(rows[1:], start=2):
        cell = dict(zip(header, (value.strip() for value in row)))
        student = cell.get("student_id", "")
        try:
            variant = int(cell.get("variant", ""))
        except ValueError:
            variant = -1
        if not student or variant < 0:
            raise SymbpError(f"ANSWERS: {path} row {line}: needs a student_id and a variant (0 or more); "
                             "copy both from the answers.csv that symbp wrote")
        given = {name: _number(cell.get(name, "")) for name in columns}
        found.append((student, variant, given))
    return found


def _number(text: str) -> float | None:
    try:
        value = float(text.replace(",", ".")) if text else None
    except ValueError:
        return None
    return value if value is None or value == value else None
