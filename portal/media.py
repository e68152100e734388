"""Members' pictures and the catalogue's product photos, at ``/media/<folder>/<token>.<ext>``.

Every stored picture was re-encoded by ``community.images`` and named by a random token, so the
URL is the capability: it cannot be guessed, and only pages that may show the picture (a
friends-only board to a friend, say) print it. Names are checked against that exact shape before
the disk is touched; nothing else under the uploads directory (the export zips' sources are the
same files, but no other folder) is ever served.
"""

from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, send_from_directory
from werkzeug.wrappers import Response

from instore.member_data import UPLOADS_DIRNAME

bp = Blueprint("media", __name__, url_prefix="/media")

# The folders pictures are stored in (``community.images.store_upload``'s ``folder``).
MEDIA_FOLDERS: tuple[str, ...] = ("avatars", "boards", "products")
# A token from ``secrets.token_urlsafe(16)`` (22 characters) and the extension re-encoding gives.
_NAME = re.compile(r"[A-Za-z0-9_-]{22}\.(?:jpg|png)")
# A picture never changes under its name (a new one gets a new token): phones may keep it a day.
CACHE_SECONDS = 24 * 3600


@bp.route("/<folder>/<name>")
def picture(folder: str, name: str) -> Response:
    if folder not in MEDIA_FOLDERS or not _NAME.fullmatch(name):
        abort(404)
    root = current_app.config["INSTORE"].var_dir / UPLOADS_DIRNAME / folder
    response = send_from_directory(root, name, max_age=CACHE_SECONDS)
    # Private: a friends-only board's photo must not sit in a shared cache.
    response.headers["Cache-Control"] = f"private, max-age={CACHE_SECONDS}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def media_url(relative: str | None) -> str | None:
    """The URL of a stored picture's relative path (as tables keep it), or None."""
    if not relative:
        return None
    folder, _, name = relative.partition("/")
    if folder not in MEDIA_FOLDERS or not _NAME.fullmatch(name):
        return None
    from flask import url_for

    return url_for("media.picture", folder=folder, name=name)
