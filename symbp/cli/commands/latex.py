"""symbp derive and symbp worksheet: LaTeX documents for a spec, their PDFs with --pdf, or HTML pages with --html."""

from __future__ import annotations

from pathlib import Path

from symbp.errors import SymbpError
from symbp.output import FirstLineMarker, HtmlGeneratorMarker, Output, claim_outputs, write_atomically
from symbp.render.latex.document import MARKER, derivation_document
from symbp.render.latex.notation import NOTATION_NAMES, notation_named
from symbp.render.latex.tex import PDF_MARKER, compile_pdf, write_pdf
from symbp.spec.schema import load_spec

TEX_MARKER = FirstLineMarker(MARKER)
# symbp.render.html.page.MARKER; spelled here so that the command's import stays light.
HTML_MARKER = HtmlGeneratorMarker("symbp-generated-page")

WORKSHEET_FORMATS = ("pdf", "tex", "html", "moodle", "qti", "prairielearn")
NOTATION_HELP = f"notation preset: {', '.join(NOTATION_NAMES)} (default: the spec's, else lab)"


def _common(parser) -> None:
    parser.add_argument("spec", help="a .toml or .json spec, or a bundled example's name")
    parser.add_argument("-o", "--output", metavar="FILE.tex", help="where to write the LaTeX (default in this folder)")
    parser.add_argument("--notation", metavar="NAME", help=NOTATION_HELP)
    parser.add_argument("--pdf", action="store_true", help="also compile it to FILE.pdf (needs pdflatex or latexmk)")
    parser.add_argument("--html", action="store_true",
                        help="write one self-contained HTML page instead (MathML, no TeX needed; -o FILE.html)")
    parser.add_argument("--force", action="store_true", help="overwrite files that symbp did not write")


def register(commands) -> None:
    derive = commands.add_parser(
        "derive", help="write the step-by-step LaTeX derivation of backpropagation for a spec",
        description="Writes a LaTeX document deriving every gradient of the spec's network, step by step, in "
        "the notation of one of the reference texts. Every formula in it is checked numerically by the tests.",
    )
    _common(derive)
    derive.set_defaults(run=run_derive)

    worksheet = commands.add_parser(
        "worksheet", help="write a LaTeX worksheet (and answer key) on backpropagation by hand",
        description="Writes exercises on a spec's network: derive gradients, one forward and backward pass and "
        "one update on small numbers, and a few steps of batch gradient descent on a line.",
    )
    _common(worksheet)
    worksheet.add_argument("--variant", type=int, default=0, metavar="N",
                           help="which set of numbers (default 0, the lab's numbers for the line); each N gives "
                           "its own sheet, the same every time")
    worksheet.add_argument("--solutions", action="store_true", help="append the answer key")
    worksheet.add_argument("--key-only", action="store_true", help="write the answer key alone, without the exercises")
    worksheet.add_argument("--roster", metavar="STUDENTS.csv",
                           help="one worksheet per student (a CSV with an id column), a combined answer key and "
                           "answers.csv, written to the folder -o (default SPEC_roster)")
    worksheet.add_argument("--format", metavar="NAME",
                           help="tex (default), pdf (as --pdf), html (as --html), or an export for a learning "
                           "platform: moodle (XML), qti (QTI 2.1 package and Canvas's QTI 1.2), prairielearn (question "
                           "folders); exports "
                           "and --roster write into the folder -o")
    worksheet.set_defaults(run=run_worksheet)


def _target(args, default: str, spec) -> Path:
    """The .tex path, claimed with its PDF (for --pdf) before anything is rendered or written."""
    target = Path(args.output) if args.output else Path(default)
    if target.suffix != ".tex":
        raise SymbpError(f"{target}: give a file name ending in .tex")
    outputs = [Output(target, TEX_MARKER)]
    if args.pdf:
        outputs.append(Output(target.with_suffix(".pdf"), PDF_MARKER))
    claim_outputs(outputs, inputs=[spec.source], force=args.force)
    return target


def _html_target(args, default: str, spec) -> Path:
    """The page's path, claimed before anything is rendered; HTML support checked first."""
    from symbp.render.html.mathml import require_html_support

    if args.pdf:
        raise SymbpError("--pdf: a page has no PDF; give --html or --pdf, not both")
    target = Path(args.output) if args.output else Path(default)
    if target.suffix != ".html":
        raise SymbpError(f"{target}: give a file name ending in .html")
    require_html_support()
    claim_outputs([Output(target, HTML_MARKER)], inputs=[spec.source], force=args.force)
    return target


def _write_html(args, text: str, target: Path) -> int:
    write_atomically(target, text, marker=HTML_MARKER, force=args.force)
    print(f"wrote {target}")
    return 0


def _write(args, text: str, target: Path) -> int:
    pdf = compile_pdf(text, target.stem) if args.pdf else None
    write_atomically(target, text, marker=TEX_MARKER, force=args.force)
    print(f"wrote {target}")
    if pdf is not None:
        write_pdf(target.with_suffix(".pdf"), pdf, force=args.force)
        print(f"wrote {target.with_suffix('.pdf')}")
    return 0


def _notation(args) -> str | None:
    if args.notation is not None:
        notation_named(args.notation)  # an unknown name fails here, with a suggestion
    return args.notation


def run_derive(args) -> int:
    notation = _notation(args)
    spec = load_spec(args.spec)
    if args.html:
        from symbp.render.html.page import derivation_page

        target = _html_target(args, f"{spec.name}_derivation.html", spec)
        return _write_html(args, derivation_page(spec, notation), target)
    target = _target(args, f"{spec.name}_derivation.tex", spec)
    return _write(args, derivation_document(spec, notation), target)


def run_worksheet(args) -> int:
    from symbp.render.latex.worksheet_document import worksheet_document

    if args.format is not None and args.format not in WORKSHEET_FORMATS:
        raise SymbpError(f"--format: no format named {args.format!r}; choose one of {', '.join(WORKSHEET_FORMATS)}")
    if args.html and args.format not in (None, "html"):
        raise SymbpError(f"--html: asks for a page, but --format asks for {args.format}; give one of them")
    args.html = args.html or args.format == "html"
    if args.roster or args.format in ("moodle", "qti", "prairielearn"):
        from symbp.classroom.command import run

        return run(args)
    args.pdf = args.pdf or args.format == "pdf"
    notation = _notation(args)
    if args.variant < 0:
        raise SymbpError(f"--variant: must be 0 or more, got {args.variant}")
    spec = load_spec(args.spec)
    suffix = "_key" if args.key_only else "_solutions" if args.solutions else ""
    if args.html:
        from symbp.render.html.page import worksheet_page

        target = _html_target(args, f"{spec.name}_worksheet_{args.variant}{suffix}.html", spec)
        page = worksheet_page(spec, notation, args.variant, args.solutions, key_only=args.key_only)
        return _write_html(args, page, target)
    target = _target(args, f"{spec.name}_worksheet_{args.variant}{suffix}.tex", spec)
    text = worksheet_document(spec, notation, args.variant, args.solutions, key_only=args.key_only)
    return _write(args, text, target)
