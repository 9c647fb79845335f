"""A class roster, and each student's worksheet variant.

A student's variant is ``1 + (first 8 bytes of SHA-256 of "SPEC_NAME/STUDENT_ID", big-endian) mod (2**31 - 1)``:
the same for that student and spec on every machine, never 0 (variant 0 is the lab's own numbers).
Two students must not share numbers, so ids are taken in sorted order and a student whose variant is
already taken or whose numbers equal an earlier student's moves on to the
next variant (``+ 1``, wrapping below 2**31). Sorting makes the outcome independent of the roster's row order.
The numbers themselves are drawn by ``symbp.worksheet.numbers``, which already redraws degenerate exercises.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from symbp.errors import SymbpError
from symbp.worksheet.exercises import Worksheet, _rng, build_worksheet, hand_spec
from symbp.worksheet.numbers import draw_hand_numbers, line_problem

VARIANTS = 2**31 - 1
# Ids become file names: letters, digits and . _ - @ + only, not starting with a dot.
ID_PATTERN = re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9._@+-]{0,63}")
ID_COLUMNS = ("id", "student_id", "student id", "username", "email")


@dataclass(frozen=True)
class Student:
    id: str
    name: str


@dataclass(frozen=True)
class Assigned:
    student: Student
    sheet: Worksheet

    @property
    def variant(self) -> int:
        return self.sheet.variant


def first_variant(spec_name: str, student_id: str) -> int:
    digest = hashlib.sha256(f"{spec_name}/{student_id}".encode()).digest()
    return 1 + int.from_bytes(digest[:8], "big") % VARIANTS


def read_roster(path) -> list[Student]:
    """The students of a CSV roster with a header row naming an id column (id, student_id, username or email)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SymbpError(f"--roster: cannot read {path}: {error.strerror}; give a readable CSV file") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SymbpError(f"--roster: {path} is not UTF-8 text (byte {error.start}); save it as UTF-8 CSV") from None
    rows = list(csv.reader(io.StringIO(text)))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise SymbpError(f"--roster: {path} is empty; give a CSV with a header row (id,name) and one row a student")
    header = [cell.strip().lower() for cell in rows[0]]
    id_column = next((header.index(name) for name in ID_COLUMNS if name in header), None)
    if id_column is None:
        raise SymbpError(f"--roster: {path} has no id column; name one column of the header row 'id'")
    name_column = header.index("name") if "name" in header else None
    students, seen = [], {}
    for line, row in enumerate(rows[1:], start=2):
        student_id = row[id_column].strip() if id_column < len(row) else ""
        if not student_id:
            raise SymbpError(f"--roster: {path} row {line}: empty id; give every student an id")
        if not ID_PATTERN.fullmatch(student_id):
            raise SymbpError(f"--roster: {path} row {line}: id {student_id!r} is not usable as a file name; "
                             "use letters, digits and . _ - @ + (at most 64, not starting with a dot)")
        if student_id in seen:
            raise SymbpError(f"--roster: {path} row {line}: id {student_id!r} repeats row {seen[student_id]}; "
                             "give every student a different id")
        seen[student_id] = line
        name = row[name_column].strip() if name_column is not None and name_column < len(row) else ""
        students.append(Student(student_id, name))
    if not students:
        raise SymbpError(f"--roster: {path} lists no students; add one row a student under the header")
    return students


def variant_numbers(spec, variant: int, small=None) -> tuple:
    """The numbers a variant's sheet gives the student, drawn as the worksheet draws them, without the exact
    arithmetic: cheap enough to screen a whole roster. ``small`` is ``hand_spec(spec)[0]`` when known."""
    small = small if small is not None else hand_spec(spec)[0]
    hand = draw_hand_numbers(small, _rng(spec, variant))
    return (hand.x, hand.y, tuple(sorted(hand.params.items())), line_problem(variant))


def assign(spec, students: list[Student]) -> dict[str, int]:
    """Each student's variant: no two share a variant or the numbers their sheets give."""
    small = hand_spec(spec)[0]
    taken_variants: set[int] = set()
    taken_numbers: set[tuple] = set()
    variants: dict[str, int] = {}
    for student in sorted(students, key=lambda s: s.id):
        variant = first_variant(spec.name, student.id)
        while variant in taken_variants or (numbers := variant_numbers(spec, variant, small)) in taken_numbers:
            variant = variant % VARIANTS + 1
        taken_variants.add(variant)
        taken_numbers.add(numbers)
        variants[student.id] = variant
    return variants


def assign_variants(spec, students: list[Student], error_sign: int = 1) -> list[Assigned]:
    """Each student's worksheet, in roster order (see ``assign``)."""
    variants = assign(spec, students)
    return [Assigned(student, build_worksheet(spec, variants[student.id], error_sign)) for student in students]
