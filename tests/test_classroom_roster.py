"""Rosters: each student's variant, the files written for a class, and bad input refused in one line."""

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from symbp.classroom import roster as roster_module
from symbp.classroom.answers import degenerate, given_numbers
from symbp.classroom.command import answer_key
from symbp.classroom.roster import Student, assign_variants, first_variant, read_roster
from symbp.errors import SymbpError
from symbp.render.latex.document import notation_for
from symbp.render.latex.tex import compile_pdf, tex_available
from symbp.spec.schema import load_spec

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "symbp", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=600)


def test_a_students_variant_is_the_documented_hash():
    digest = hashlib.sha256(b"xor/s1234").digest()
    assert first_variant("xor", "s1234") == 1 + int.from_bytes(digest[:8], "big") % (2**31 - 1)
    assert first_variant("xor", "s1234") != first_variant("iris", "s1234")


def test_roster_order_does_not_change_anyone_s_variant():
    spec = load_spec("linear_regression")
    students = [Student(f"s{k:03}", "") for k in range(12)]
    forward = {a.student.id: a.variant for a in assign_variants(spec, students)}
    backward = {a.student.id: a.variant for a in assign_variants(spec, students[::-1])}
    assert forward == backward


def test_collisions_move_on_to_the_next_variant(monkeypatch):
    monkeypatch.setattr(roster_module, "first_variant", lambda spec_name, student_id: 7)
    spec = load_spec("linear_regression")
    assigned = assign_variants(spec, [Student(f"s{k}", "") for k in range(6)])
    variants = [a.variant for a in assigned]
    assert variants == sorted(variants) and len(set(variants)) == 6 and variants[0] >= 7
    assert len({given_numbers(a.sheet) for a in assigned}) == 6
    assert all(degenerate(a.sheet) is None for a in assigned)


@pytest.mark.parametrize(("content", "words"), [
    (b"id,name\na,A\nb,B\na,C\n", "repeats row 2"),
    (b"id,name\na,A\n,B\n", "row 3: empty id"),
    (b"id,name\na,\xe9l\xe8ve\n", "not UTF-8"),
    (b"name\nAlice\n", "no id column"),
    (b"id\n../evil\n", "not usable as a file name"),
    (b"", "is empty"),
    (b"id,name\n", "lists no students"),
])
def test_bad_rosters_are_refused(tmp_path, content, words):
    path = tmp_path / "students.csv"
    path.write_bytes(content)
    with pytest.raises(SymbpError, match=words.replace(".", r"\.")):
        read_roster(path)


def test_roster_csv_with_a_bom_and_other_columns(tmp_path):
    path = tmp_path / "students.csv"
    path.write_bytes("\ufeffEmail,Name,Group\nana@uni.edu,Ana,1\nbo@uni.edu,Bo,2\n".encode())
    assert read_roster(path) == [Student("ana@uni.edu", "Ana"), Student("bo@uni.edu", "Bo")]


def test_roster_run_writes_sheets_key_and_answers_then_grades_them(tmp_path):
    (tmp_path / "students.csv").write_text("id,name\nann,Ann\nbob,Bob\n")
    result = run("worksheet", "xor", "--roster", "students.csv", "-o", "class", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "class"
    assert sorted(p.name for p in folder.iterdir()) == ["answer_key.tex", "answers.csv", "xor_ann.tex", "xor_bob.tex"]
    rows = list(csv.DictReader((folder / "answers.csv").open()))
    assert [r["student_id"] for r in rows] == ["ann", "bob"]
    assert rows[0]["variant"] == str(first_variant("xor", "ann"))
    assert rows[0]["delta2_1"] != rows[1]["delta2_1"]
    result = run("grade", "xor", "class/answers.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ann (variant" in result.stdout and "2 of 2 students answered everything right" in result.stdout
    rows[1]["dW2_1_1"] = str(-float(rows[1]["dW2_1_1"]))
    with (tmp_path / "filled.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = run("grade", "xor", "filled.csv", cwd=tmp_path)
    bob = next(line for line in result.stdout.splitlines() if line.startswith("bob"))
    assert "first wrong: dW2_1_1" in bob and "a wrong sign" in bob
    # Running again replaces symbp's own LaTeX but not the CSV without --force.
    again = run("worksheet", "xor", "--roster", "students.csv", "-o", "class", cwd=tmp_path)
    assert again.returncode == 2 and "answers.csv: exists" in again.stderr


@pytest.mark.parametrize(("args", "files", "words"), [
    (("worksheet", "xor", "--roster", "r.csv"), {"r.csv": b"id\nx\nx\n"}, "repeats row 2"),
    (("worksheet", "xor", "--roster", "r.csv"), {"r.csv": b"id,name\nx,X\n,Y\n"}, "row 3: empty id"),
    (("worksheet", "xor", "--roster", "r.csv"), {"r.csv": b"id\n\xff\xfe\n"}, "not UTF-8"),
    (("worksheet", "xor", "--format", "docx"), {}, "--format: no format named 'docx'"),
    (("worksheet", "xor", "--format", "moodle", "-o", "a/b"), {}, "a: directory does not exist"),
    (("worksheet", "xor", "--roster", "r.csv", "-o", "r"), {"r.csv": b"id\na\n", "r": b"x"}, "r: is not a folder"),
    (("worksheet", "xor", "--format", "docx", "--roster", "r.csv"), {"r.csv": b"id\na\n"}, "no format named"),
    (("grade", "xor", "a.csv"), {"a.csv": b"student_id,variant,z1_1\ns,3,0.5\n"}, "lacks the columns"),
    (("grade", "xor", "a.csv"), {"a.csv": b"student_id,z1_1\ns,0.5\n"}, "lacks the columns variant"),
    (("grade", "xor", "a.csv"), {"a.csv": b"\xff\n"}, "not UTF-8"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, args, files, words):
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("symbp: error: ")
    assert words in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)


def test_an_existing_foreign_file_stops_the_run_before_anything_is_written(tmp_path):
    (tmp_path / "r.csv").write_text("id\nann\nbob\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "xor_bob.tex").write_text("my own notes\n")
    result = run("worksheet", "xor", "--roster", "r.csv", "-o", "out", cwd=tmp_path)
    assert result.returncode == 2 and "xor_bob.tex: exists and was not written by symbp" in result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["xor_bob.tex"]


@pytest.mark.skipif(not tex_available(), reason="needs pdflatex")
def test_the_combined_answer_key_compiles():
    spec = load_spec("xor")
    assigned = assign_variants(spec, [Student("ann", "Ann"), Student("b_o", "")])
    assert compile_pdf(answer_key(spec, notation_for(spec), assigned), "key").startswith(b"%PDF")
