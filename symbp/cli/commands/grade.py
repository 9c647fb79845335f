"""symbp grade: which of each student's answers is first wrong, and what the slip looks like."""

from __future__ import annotations

from symbp.classroom.answers import answers_of
from symbp.classroom.grading import grade
from symbp.classroom.table import read_answers
from symbp.render.latex.document import notation_for
from symbp.render.latex.notation import notation_named
from symbp.spec.schema import load_spec
from symbp.worksheet.exercises import build_worksheet


def register(commands) -> None:
    parser = commands.add_parser(
        "grade", help="grade students' answers to their worksheets (the answers.csv of --roster, filled in)",
        description="Reads ANSWERS.csv (the answers.csv that symbp worksheet SPEC --roster wrote, with the "
        "students' own numbers in place of the expected ones) and reports, for each student, the first answer "
        "that does not follow from their own earlier answers, naming a wrong sign, a missing derivative factor, "
        "a transposed product, an off-by-one layer or a wrong learning rate where it recognises one.",
    )
    parser.add_argument("spec", help="the spec the worksheets were made for")
    parser.add_argument("answers", metavar="ANSWERS.csv", help="one row a student: student_id, variant, answers")
    parser.add_argument("--notation", metavar="NAME", help="the notation the worksheets used (default: the spec's)")
    parser.set_defaults(run=run_grade)


def run_grade(args) -> int:
    if args.notation is not None:
        notation_named(args.notation)
    spec = load_spec(args.spec)
    sign = notation_for(spec, args.notation).error_sign
    columns = [answer.name for answer in answers_of(build_worksheet(spec, 0, sign))]
    rows = read_answers(args.answers, columns)
    perfect = 0
    for student, variant, given in rows:
        report = grade(build_worksheet(spec, variant, sign), given, student)
        perfect += report.first is None
        print(report.line())
    print(f"{perfect} of {len(rows)} students answered everything right")
    return 0
