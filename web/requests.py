"""Reading a request's body the way every route does: the uploaded image file and a JSON object."""

from __future__ import annotations

from flask import current_app, request

from models.errors import BadRequest, NoFile, UnsupportedMediaType
from web.model_choice import check_size


def uploaded_file() -> bytes:
    """The image in the request's ``file`` field, with the upload errors every route shares."""
    if request.mimetype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise UnsupportedMediaType('Send multipart/form-data with the image in the "file" field.')
    file = request.files.get("file")
    data = file.read(current_app.config["MAX_UPLOAD_BYTES"] + 1) if file is not None else b""
    if not data:  # a file without a name still counts when it has bytes
        if file is None or not file.filename:
            raise NoFile('No file: attach an image in the "file" field.')
        raise NoFile("The uploaded file is empty.")
    return check_size(data)


def json_object() -> dict:
    """The request's JSON body when it is an object; an empty one when there is none."""
    body = request.get_json(silent=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body
