"""A thousand students on every bundled worksheet: distinct numbers for everyone, no degenerate exercise.

How long it takes is measured by benchmarks/roster_variants.py, not asserted here.
"""

import pytest
from bundled import derivable_spec_paths

from symbp.classroom.answers import degenerate, given_numbers
from symbp.classroom.roster import Student, assign, variant_numbers
from symbp.spec.schema import load_spec
from symbp.worksheet.exercises import build_worksheet, hand_spec
from symbp.worksheet.numbers import HandNumbers, hand_degeneracy

STUDENTS = [Student(f"s{k:04}", "") for k in range(1000)]


@pytest.mark.parametrize("path", derivable_spec_paths(), ids=lambda p: p.stem)
def test_a_thousand_students_get_distinct_sound_sheets(path):
    spec = load_spec(path)
    variants = assign(spec, STUDENTS)
    assert len(set(variants.values())) == len(STUDENTS)
    small = hand_spec(spec)[0]
    numbers = [variant_numbers(spec, variant, small) for variant in variants.values()]
    assert len(set(numbers)) == len(STUDENTS)
    for x, y, params, line in numbers:
        assert hand_degeneracy(small, HandNumbers(x, y, dict(params))) == ""
        assert line.start != (line.slope, line.intercept)
    # A few full sheets: the numbers screened are the sheet's numbers, and the sheet teaches something.
    for student in STUDENTS[:2]:
        sheet = build_worksheet(spec, variants[student.id])
        assert degenerate(sheet) is None
        hand, drawn = sheet.hand, numbers[STUDENTS.index(student)]
        assert tuple(map(float, hand.x)) == tuple(map(float, drawn[0]))
        for name, rows in drawn[2]:
            assert [[float(v) for v in row] for row in rows] == [[float(v) for v in row]
                                                                  for row in hand.params[name].tolist()]
        assert given_numbers(sheet)[4] == tuple(drawn[3].xs)
