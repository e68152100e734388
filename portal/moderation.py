"""Skeleton: filled in by its feature (issue 7)."""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("moderation", __name__)


@bp.route("/report/<kind>/<int:item_id>", methods=["GET", "POST"])
def flag(kind: str, item_id: int) -> str:
    abort(404)
