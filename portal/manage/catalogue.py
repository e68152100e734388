"""Skeleton: filled in by its feature (issue 7)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("manage_catalogue", __name__, url_prefix="/manage/catalogue")
