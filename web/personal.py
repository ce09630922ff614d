"""Teaching a profile your handwriting: the ``/personal`` routes (``flask --app app personal`` is in
``web/cli.py``).

- ``POST /personal/teach``: one sample (JSON ``image`` data URL, or multipart ``file``) with its
  ``task``, ``label`` and ``profile``; answers ``202 {"job_id", "profile"}`` at once (plus the new
  ``profile_token`` when this made the profile). Teaching an existing profile needs its token.
- ``GET /personal/jobs/<id>``: ``{"state", "step", "progress", "eta_s"}`` and, when done, the results
  and the picture URLs.
- ``GET /personal/profiles``; ``DELETE /personal/profiles/<name>`` (owner or admin token);
  ``GET /personal/profiles/<name>/pictures/<task>/<code>/<picture>.png`` (``?download=1``).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, jsonify, request, send_file, url_for

from models.errors import (
    InputError,
    InvalidLabel,
    ProfileForbidden,
    TeachQueueFull,
    TooManyProfiles,
    UnknownJob,
    UnknownProfile,
    UnknownTask,
)
from models.preprocessing import decode_data_url, to_png
from models.profiles import (
    PICTURES,
    check_name,
    create_profile,
    delete_profile,
    existing_profile,
    list_profiles,
    profile_task_dir,
    sample_glyph,
    token_matches,
)
from models.reading.glyph import GLYPH_TASKS, available_tasks
from web import metrics
from web.auth import is_admin
from web.jobs import QueueFull, TeachQueue
from web.requests import uploaded_file

bp = Blueprint("personal", __name__, url_prefix="/personal")


def personal_root() -> Path:
    return Path(current_app.config["PERSONAL_DIR"])


def queue() -> TeachQueue:
    """The app's teach queue (jobs under ``PERSONAL_DIR/.jobs``)."""
    if "teach_queue" not in current_app.extensions:
        current_app.extensions["teach_queue"] = TeachQueue(
            personal_root() / ".jobs", current_app.config["TEACH_MAX_WAITING"], current_app.config["TEACH_NICE"]
        )
    return current_app.extensions["teach_queue"]


def _registry():
    return current_app.extensions["registry"]


def checked_sample(data: bytes, task: str, label: str, name: str) -> bytes:
    """Check a teach request before it is queued; returns the sample as PNG (the glyph path's input).
    Raises the errors a client gets: unknown task, invalid label, bad profile name, blank image."""
    tasks = [t for t in available_tasks(_registry()) if t in GLYPH_TASKS]
    if task not in tasks:
        raise UnknownTask(task, tasks)
    check_name(name)
    labels = _registry().get(task).labels
    if not isinstance(label, str) or label not in labels:
        raise InvalidLabel(f"{label!r} is not a {task} label; choose one of: {''.join(labels)}.")
    gray, _ = sample_glyph(data, current_app.config["MAX_IMAGE_PIXELS"])  # BlankImage -> 422 before queueing
    return to_png((gray * 255).round().astype("uint8"))


def _given_token() -> str | None:
    body = request.get_json(silent=True) if request.is_json else None
    form = request.form if not request.is_json else {}
    return request.headers.get("X-Profile-Token") or (body or {}).get("profile_token") or form.get("profile_token")


def _may_change(profile: Path) -> None:
    """Refuse unless the request carries the profile's token or the admin token."""
    if not (token_matches(profile, _given_token()) or is_admin()):
        raise ProfileForbidden(
            f"Profile {profile.name!r} belongs to somebody: send its token (X-Profile-Token) or the admin token."
        )


def picture_urls(profile: str, task: str, record: dict) -> dict[str, dict[str, str]]:
    """label -> picture name -> URL, for a teach record."""
    return {
        chr(int(code)): {
            n: url_for("personal.picture", name=profile, task=task, code=int(code), picture=n) for n in names
        }
        for code, names in record.get("pictures", {}).items()
    }


@bp.post("/teach")
def teach():
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("image"), str) or not body["image"]:
            raise InputError('Send JSON with the sample as a data: URL in "image".')
        data, fields = decode_data_url(body["image"]), body
    else:
        data, fields = uploaded_file(), request.form
    task, label, name = (str(fields.get(k, "")) for k in ("task", "label", "profile"))
    task = task or "digit"
    metrics.note_task(task)
    png = checked_sample(data, task, label, name)
    folder, token = open_profile(name)
    if token is None:
        _may_change(folder)
    reg = _registry()
    req = {
        "task": task,
        "label": label,
        "profile": name,
        "profile_dir": str(folder),
        "base_dir": str(reg.source(task)),
        "weights_dir": str(reg.weights_dir),
        "options": current_app.config["TEACH_OPTIONS"],
    }
    return job_answer(submit_job(req, png), name, token)


def open_profile(name: str) -> tuple[Path, str | None]:
    """The profile's folder, made now (with its token) unless it exists; refused when the server
    keeps ``MAX_PROFILES`` already."""
    limit = current_app.config["MAX_PROFILES"]
    if not (personal_root() / name).exists() and len(list_profiles(personal_root())) >= limit:
        raise TooManyProfiles(f"This server keeps at most {limit} profiles; it is full.")
    return create_profile(personal_root(), name)


def submit_job(req: dict, sample_png: bytes = b"") -> str:
    """Queue a job (a teach, or a sheet's training); its id. 429 when too many wait already."""
    try:
        return queue().submit(req, sample_png)
    except QueueFull as exc:
        raise TeachQueueFull("Other teaches are waiting; try again shortly.", exc.retry_after) from None


def job_answer(job_id: str, name: str, token: str | None):
    """The 202 answer to a queued job: its id, the profile, where to follow it, and the profile's
    token when the request made the profile."""
    answer = {"job_id": job_id, "profile": name, "status_url": url_for("personal.job", job_id=job_id)}
    return jsonify(answer | ({"profile_token": token} if token else {})), 202


@bp.get("/jobs/<job_id>")
def job(job_id: str):
    state = queue().state(job_id)
    if state is None:
        raise UnknownJob("There is no teach job with that id.")
    if state["state"] == "done":
        state["pictures"] = picture_urls(state["profile"], state["task"], state["result"])
    return jsonify(state)


@bp.get("/profiles")
def profiles():
    return jsonify({"profiles": list_profiles(personal_root())})


@bp.delete("/profiles/<name>")
def delete(name: str):
    folder = existing_profile(personal_root(), name)
    _may_change(folder)
    delete_profile(personal_root(), name)
    _registry().forget(folder)
    queue().forget(name)
    return jsonify({"deleted": name})


@bp.get("/profiles/<name>/pictures/<task>/<int:code>/<picture>.png")
def picture(name: str, task: str, code: int, picture: str):
    folder = existing_profile(personal_root(), name)
    path = profile_task_dir(folder, task) / "pictures" / str(code) / f"{picture}.png"
    if task not in GLYPH_TASKS or picture not in PICTURES or not path.is_file():
        raise UnknownProfile("There is no such picture.")
    download = request.args.get("download") not in (None, "", "0", "false")
    return send_file(
        path,
        mimetype="image/png",
        as_attachment=download,
        download_name=f"{name}-{task}-{chr(code)}-{picture}.png",
        max_age=0,
    )
