"""The files an edge box needs beside the code: gunicorn settings, systemd units, templates and
the install and upgrade scripts.

A package only so that a wheel carries them: the code finds them next to itself
(``Path(__file__).parents[1] / "deploy"``) in a checkout and in an installed release alike.
"""
