"""The ``flask --app app`` commands of the app itself: ``recognize`` (image files to JSON lines,
as the API answers), ``sheet train|list`` (personal models from handwriting sheets) and
``personal teach|list|delete`` (profiles, as the ``/personal`` routes). The feedback store's
commands are in ``feedback/``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from models.decoding.candidates import ALPHABET_HINTS
from models.decoding.ctc import DECODERS
from models.errors import InputError, ProfileError, TooLarge, WeightsError
from models.handwriting_sheets import list_personal, personal_dir, read_sheet
from models.profiles import create_profile, delete_profile, list_profiles
from models.reading.glyph import GLYPH_TASKS
from models.reading.page import ENGINES, PAGE_ALPHABETS
from training.lib.one_sample import TeachConfig
from training.lib.one_sample import teach as run_teach
from web.model_choice import read, registry
from web.personal import checked_sample, personal_root

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def _image_files(paths: tuple[str, ...]) -> list[Path]:
    """Files named, and image files inside named folders (sorted), in argument order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        else:
            out.append(p)
    return out


@click.command("recognize")
@click.option(
    "--task", default="digit", show_default=True, help="What to read: " + ", ".join(GLYPH_TASKS) + ", page, line."
)
@click.option(
    "--alphabet",
    type=click.Choice(sorted(set(PAGE_ALPHABETS) | set(ALPHABET_HINTS))),
    default=None,
    help="character: read among these classes only (default any); page: what the page holds (default digit)",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="cnn",
    show_default=True,
    help="page: the CNN models or the classical HOG engine",
)
@click.option(
    "--profile",
    "--personal",
    "profile",
    default=None,
    help="a profile's name: its adapted model reads (see `flask personal teach`, `flask sheet train`)",
)
@click.option("--decoder", type=click.Choice(DECODERS), default="beam", show_default=True, help="line: CTC decoding")
@click.option("--correct/--no-correct", default=True, show_default=True, help="line: spelling correction")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@with_appcontext
def recognize_command(
    task: str,
    alphabet: str | None,
    engine: str,
    profile: str | None,
    decoder: str,
    correct: bool,
    paths: tuple[str, ...],
) -> None:
    """Print one JSON object per image (the API's response shape plus "file"), one per line.
    Exits with status 1 when any file could not be read."""
    config = current_app.config
    failures = 0
    for path in _image_files(paths):
        try:
            if path.stat().st_size > config["MAX_UPLOAD_BYTES"]:
                limit = config["MAX_UPLOAD_BYTES"]
                raise TooLarge(f"The image is {path.stat().st_size:,} bytes; the limit is {limit:,}.")
            options = {
                "alphabet": alphabet,
                "engine": engine,
                "profile": profile,
                "decoder": decoder,
                "correct": correct,
            }
            result = read(path.read_bytes(), task, options).result
        except InputError as exc:
            failures += 1
            result = {"error": {"code": exc.code, "message": exc.message}}
        except OSError as exc:
            failures += 1
            result = {"error": {"code": "unreadable_file", "message": f"Cannot read the file: {exc.strerror}."}}
        except WeightsError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(json.dumps({"file": str(path)} | result))
    if failures:
        sys.exit(1)


sheet_cli = AppGroup("sheet", help="Personal handwriting sheets: train and list personal models.")


@sheet_cli.command("train")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", required=True, help="name of the personal model (letters, digits, - or _)")
def sheet_train_command(path: str, name: str) -> None:
    """Check a filled-in sheet and train the personal HOG and CNN models from it."""
    from training.lib.sheet_profile import train_personal  # imports TensorFlow: only this command pays

    config = current_app.config
    root = Path(config["PERSONAL_DIR"])
    try:
        sheet = read_sheet(Path(path).read_bytes(), registry().get("digit"), config["MAX_PAGE_PIXELS"])
        out = personal_dir(root, name)
    except InputError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"sheet: {len(sheet.labels)} glyphs in 10 rows ({', '.join(str(r['count']) for r in sheet.rows)})")
    info = train_personal(sheet, name, out, registry().source("digit"))
    for engine, acc in info["metrics"]["held_out_accuracy"].items():
        click.echo(f"{engine}: {acc:.1%} on {info['samples']['held_out']} held-out glyphs of the sheet")
    click.echo(f"saved {out}; read pages with it: --task page --personal {name}")


@sheet_cli.command("list")
def sheet_list_command() -> None:
    """List the personal models."""
    for item in list_personal(Path(current_app.config["PERSONAL_DIR"])):
        click.echo(json.dumps(item))


personal_cli = AppGroup("personal", help="Profiles: teach one sample of your handwriting, list and delete profiles.")


@personal_cli.command("teach")
@click.option("--task", type=click.Choice(GLYPH_TASKS), default="digit", show_default=True, help="the model to adapt")
@click.option("--label", required=True, help="the character the sample is")
@click.option("--profile", "name", required=True, help="profile name ([a-z0-9_-], up to 40)")
@click.argument("sample", type=click.Path(exists=True, dir_okay=False))
def personal_teach_command(task: str, label: str, name: str, sample: str) -> None:
    """Teach PROFILE one sample: progress on stderr, the job's result as one JSON object on stdout."""
    try:
        png = checked_sample(Path(sample).read_bytes(), task, label, name)
    except InputError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    folder, token = create_profile(personal_root(), name)

    def progress(step: str, fraction: float) -> None:
        click.echo(f"[{fraction:4.0%}] {step}", err=True)

    reg = registry()
    record = run_teach(
        png,
        task,
        label,
        folder,
        progress,
        TeachConfig(**current_app.config["TEACH_OPTIONS"]),
        base_dir=reg.source(task),
        weights_dir=reg.weights_dir,
    )
    out = {"state": "done", "task": task, "label": label, "profile": name, "result": record}
    click.echo(json.dumps(out | ({"profile_token": token} if token else {})))


@personal_cli.command("list")
def personal_list_command() -> None:
    """List the profiles, one JSON object per line."""
    for item in list_profiles(personal_root()):
        click.echo(json.dumps(item))


@personal_cli.command("delete")
@click.argument("name")
def personal_delete_command(name: str) -> None:
    """Delete profile NAME and every file of it."""
    try:
        delete_profile(personal_root(), name)
    except ProfileError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"deleted profile {name}")
