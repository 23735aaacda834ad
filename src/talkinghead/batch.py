"""``talkinghead batch MANIFEST.csv``: render many videos, resumable, with a failure summary.

The manifest is a CSV file with a header row. Columns: ``image``, ``output``, and ``audio`` (or
``text``, spoken by offline text-to-speech); any further column is an option by its name
(``pose_style``, ``still``, ``emotion`` ... as ``GET /v1/options`` of the server lists them;
dashes work too: ``pose-style``). An empty cell keeps the value given on the command line.
Relative paths are taken from the manifest's folder. A row whose output already exists is skipped,
so an interrupted batch resumes where it stopped (outputs appear only when complete). A failing row
does not stop the batch; every failure is listed at the end, and the exit code is then 2.
"""
from __future__ import annotations

import argparse
import codecs
import csv
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config
from .errors import UserError
from .server.options import apply_options, is_path_option

REQUIRED = ("image", "output")
_INPUTS = ("image", "audio", "text", "output")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Row:
    """One manifest line: ``number`` counts from 1 at the header's next line."""

    number: int
    image: Path
    output: Path
    audio: Path | None = None
    text: str | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class Report:
    """What a batch did: outputs written and skipped, and (row, output, message) per failure."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[int, Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        """Counts on one line, then one line per failure."""
        lines = [f"batch: {len(self.done)} done, {len(self.skipped)} skipped (already there), "
                 f"{len(self.failed)} failed"]
        lines += [f"  row {n} → {out}: {message}" for n, out, message in self.failed]
        return "\n".join(lines)


def read_manifest(path: Path) -> list[Row]:
    """The rows of a manifest; ``UserError`` when it is missing, empty or lacks columns."""
    if not path.is_file():
        raise UserError(f"manifest not found: {path}. Give a CSV file with columns "
                        "image,audio,output[,options...]")
    text = _manifest_text(path)
    try:
        dialect = csv.Sniffer().sniff(text.partition("\n")[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
    header = [_column(h) for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing or ("audio" not in header and "text" not in header):
        raise UserError(f"the manifest {path} needs the columns image, output and audio (or "
                        f"text); it has: {', '.join(header) or 'none'}")
    return [_row(i + 1, raw, path.parent) for i, raw in enumerate(reader)]


def _manifest_text(path: Path) -> str:
    """The manifest's text: UTF-8 (with or without a byte-order mark), or UTF-16 with one
    (spreadsheets' "Unicode text"); ``UserError`` for anything else."""
    data = path.read_bytes()
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"the manifest {path} is not UTF-8 text ({e.reason} at byte {e.start}): "
                        "save it as CSV UTF-8") from None


def _column(name: str | None) -> str:
    return (name or "").strip().lower().replace("-", "_")


def _row(number: int, raw: dict[str | None, str | None], folder: Path) -> Row:
    """A Row from a CSV record: paths resolved from ``folder``, empty option cells dropped."""
    cells = {_column(k): (v or "").strip() for k, v in raw.items() if k is not None}

    def path(name: str) -> Path | None:
        return folder / cells[name] if cells.get(name) else None

    options = {k: str(folder / v) if is_path_option(k) else v
               for k, v in cells.items() if k not in _INPUTS and v}
    return Row(number, path("image") or folder, path("output") or folder, path("audio"),
               cells.get("text") or None, options)


def run_rows(rows: list[Row], base: Config, progress_for: Callable[[Row], Progress | None],
             overwrite: bool = False) -> Report:
    """Render each row in turn; skip rows whose output exists (unless ``overwrite``)."""
    report, seen = Report(), set()
    for row in rows:
        key = row.output.resolve()
        if key in seen:
            report.failed.append((row.number, row.output, "the same output as an earlier row"))
            continue
        seen.add(key)
        if row.output.exists() and not overwrite:
            report.skipped.append(row.output)
            continue
        error = _render_row(row, base, progress_for(row))
        if error is None:
            report.done.append(row.output)
        else:
            report.failed.append((row.number, row.output, error))
    return report


def _render_row(row: Row, base: Config, progress: Progress | None) -> str | None:
    """Render one row; None on success, else the message to list in the summary."""
    try:
        render_row(row, base, progress)
    except UserError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - one broken row must not stop the whole batch
        return f"internal error: {type(exc).__name__}: {exc}"
    return None


def render_row(row: Row, base: Config, progress: Progress | None = None) -> None:
    """Steps: the row's config, its inputs checked, the video written (folders made as needed)."""
    from .pipeline import Pipeline

    config = apply_options(base, row.options)
    if not row.output.name or row.output.is_dir():
        raise UserError("the output cell is empty or names a folder; give a file name like out.mp4")
    if (row.audio is None) == (row.text is None):
        raise UserError("give either an audio file or a text in each row, not both or neither")
    row.output.parent.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline(config)
    if row.audio is not None:
        pipeline.run(row.image, row.audio, row.output, progress)
        return
    from .audio.tts import synthesize, voice_for
    from .media import load_image

    speech = synthesize(row.text, voice_for(config.motion.language))
    pipeline.animate(load_image(row.image), speech.waveform, row.output, progress,
                     phones=speech.phones)


def add_batch_command(sub, add_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``batch`` to the CLI's subparsers; ``add_options``: the CLI's generation flags."""
    p = sub.add_parser("batch", help="render every row of a CSV manifest (resumable)")
    p.add_argument("manifest", help="CSV with columns image,audio (or text),output[,options...]")
    p.add_argument("--overwrite", action="store_true", help="render rows whose output exists too")
    add_options(p)
    p.set_defaults(func=batch_command)


def batch_command(args: argparse.Namespace) -> int:
    """Run a batch from parsed flags; exit code 0, or 2 when any row failed."""
    from .cli import ProgressBar, config_from_args

    if args.export_motion:
        raise UserError("talkinghead batch does not write --export-motion files (one file for "
                        "every row); use talkinghead generate --export-motion per video")
    rows = read_manifest(Path(args.manifest))
    total = len(rows)

    def progress_for(row: Row) -> Progress | None:
        return None if args.quiet else ProgressBar(f"[{row.number}/{total}] {row.output.name}")

    report = run_rows(rows, config_from_args(args), progress_for, args.overwrite)
    print(report.summary(), file=sys.stderr)
    return 2 if report.failed else 0
