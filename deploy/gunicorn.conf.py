"""gunicorn settings for the portal, read from the instore config so there is one place to edit.

Used by ``instore portal`` and the systemd unit:
``gunicorn -c deploy/gunicorn.conf.py portal.wsgi:app``.
"""

from instore.config import load_config

_portal = load_config()["portal"]

wsgi_app = "portal.wsgi:app"
bind = [_portal["bind"]]
# gthread: phones hold connections open (keep-alive, later Server-Sent Events); threads are cheap
# and SQLite is shared through WAL, so a few processes with many threads fit a small box.
worker_class = "gthread"
workers = _portal["workers"]
threads = _portal["threads"]
keepalive = 5  # captive sheets fetch a page and its stylesheet back to back
timeout = 30
graceful_timeout = 10
# No access log: it would record every shopper's IP for every probe. Errors go to stdout.
accesslog = None
errorlog = "-"
proc_name = "instore-portal"
# gunicorn 24+ opens a control socket at ~/.gunicorn/gunicorn.ctl by default; two gunicorns on one
# box (or in tests) would take over each other's. systemd is our control interface, so turn it off.
control_socket_disable = True
