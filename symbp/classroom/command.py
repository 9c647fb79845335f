"""``symbp worksheet SPEC --roster CSV`` and ``--format moodle|qti|prairielearn``: the command-line side.

Every output path is claimed before any sheet is built, so bad input writes nothing.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from symbp import __version__
from symbp.classroom import files
from symbp.classroom.answers import answers_of
from symbp.classroom.exercises import answer_symbol
from symbp.classroom.roster import Student, assign_variants, read_roster
from symbp.classroom.table import answers_table
from symbp.errors import SymbpError
from symbp.render.latex.document import MARKER, Writer, notation_for
from symbp.render.templating import render
from symbp.spec.schema import load_spec
from symbp.worksheet.exercises import build_worksheet

KEY_COLUMNS = 3
PENALTY_KEY_COLUMNS = 2


def answer_key_context(spec, notation, assigned) -> dict:
    """Every student's answers, for the teacher: the view-model of the answer key (LaTeX or HTML)."""
    students = []
    for entry in assigned:
        writer = Writer(notation_for(entry.sheet.hand.spec, notation.name))
        # A table per run of answers: a weight's penalty term is too wide for three columns, so the penalty's
        # answers, the term and the penalised gradient of each weight, have a table of two columns of their own.
        tables = []
        for wide, run in itertools.groupby(answers_of(entry.sheet), key=lambda answer: answer.part == "penalty"):
            cells = [{"symbol": answer_symbol(writer, answer), "value": f"{answer.value:.6g}"} for answer in run]
            columns = PENALTY_KEY_COLUMNS if wide else KEY_COLUMNS
            tables.append([cells[start:start + columns] for start in range(0, len(cells), columns)])
        students.append({"id": entry.student.id, "name": entry.student.name, "variant": entry.variant,
                         "tables": tables})
    return {"marker": MARKER, "spec": spec, "notation": notation, "version": __version__,
            "title": spec.title or spec.name, "students": students}


def answer_key(spec, notation, assigned) -> str:
    """One LaTeX document with every student's answers, for the teacher."""
    return render("classroom/answer_key.tex.j2", **answer_key_context(spec, notation, assigned))


def _folder(args, spec, kind: str) -> Path:
    return Path(args.output) if args.output else Path(f"{spec.name}_{kind}")


def run(args) -> int:
    """The worksheet command when it writes for a class: a roster, or a platform's format."""
    from symbp.render.latex.tex import compile_pdf

    spec = load_spec(args.spec)
    notation = notation_for(spec, args.notation)
    form = args.format or ("html" if getattr(args, "html", False) else "pdf" if args.pdf else "tex")
    if form == "html":
        from symbp.render.html.mathml import require_html_support

        require_html_support()  # before any work
    students = read_roster(args.roster) if args.roster else None
    folder = _folder(args, spec, "roster" if students else form)
    if folder.suffix and not folder.is_dir():
        raise SymbpError(f"-o: {folder} looks like a file name; give a folder for --roster and --format {form}")
    files.check_folder(folder)
    outputs = _outputs(folder, spec, form, students)
    files.claim(outputs, inputs=[spec.source, *([args.roster] if args.roster else [])], force=args.force)

    if students is not None:
        assigned = assign_variants(spec, students, notation.error_sign)
        groups = [(entry.student.id, entry.sheet) for entry in assigned]
    else:
        assigned = None
        groups = [(f"variant {args.variant}", build_worksheet(spec, args.variant, notation.error_sign))]
    written = {}
    if form == "html":
        from symbp.render.html.page import worksheet_page

        for (_label, sheet), path in zip(groups, _outputs(folder, spec, form, students)):
            written[path] = worksheet_page(spec, args.notation, sheet.variant, args.solutions,
                                           key_only=getattr(args, "key_only", False))
    elif form in ("tex", "pdf"):
        from symbp.render.latex.worksheet_document import worksheet_document

        for (_label, sheet), path in zip(groups, _outputs(folder, spec, form, students)):
            text = worksheet_document(spec, args.notation, sheet.variant, args.solutions,
                                      key_only=getattr(args, "key_only", False))
            written[path] = compile_pdf(text, path.stem) if form == "pdf" else text
    elif form == "moodle":
        from symbp.classroom.moodle import moodle_xml

        written[folder / f"{spec.name}_moodle.xml"] = moodle_xml(spec, notation, groups)
    elif form == "qti":
        from symbp.classroom.qti import canvas_package, qti_package

        written[folder / f"{spec.name}_qti21.zip"] = qti_package(spec, notation, groups)
        written[folder / f"{spec.name}_canvas_qti12.zip"] = canvas_package(spec, notation, groups)
    elif form == "prairielearn":
        from symbp.classroom.prairielearn import question_files

        for relative, text in question_files(spec, notation, groups[0][1]).items():
            written[folder / relative] = text
    if assigned is not None:
        if form == "html":
            from symbp.render.html.page import answer_key_page

            written[folder / "answer_key.html"] = answer_key_page(answer_key_context(spec, notation, assigned))
        else:
            key = answer_key(spec, notation, assigned)
            written[folder / "answer_key.tex"] = key
            if form == "pdf":
                written[folder / "answer_key.pdf"] = compile_pdf(key, "answer_key")
        written[folder / "answers.csv"] = answers_table(assigned)

    files.make_folder(folder)
    for path, content in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            files.write_bytes(path, content)
        else:
            files.write_text(path, content)
    print(f"wrote {len(written)} files to {folder}/")
    return 0


def _outputs(folder: Path, spec, form: str, students: list[Student] | None) -> list[Path]:
    """Every file the run will write, known before any work."""
    names: list[str] = []
    if form in ("tex", "pdf", "html"):
        extension = {"pdf": ".pdf", "tex": ".tex", "html": ".html"}[form]
        names += [f"{spec.name}_{student.id}{extension}" for student in students or ()]
    elif form == "moodle":
        names.append(f"{spec.name}_moodle.xml")
    elif form == "qti":
        names += [f"{spec.name}_qti21.zip", f"{spec.name}_canvas_qti12.zip"]
    elif form == "prairielearn":
        from symbp.classroom.prairielearn import question_names

        names += question_names(spec)
    if students:
        key = "answer_key.html" if form == "html" else "answer_key.tex"
        names += [key, "answers.csv"] + (["answer_key.pdf"] if form == "pdf" else [])
    return [folder / name for name in names]
