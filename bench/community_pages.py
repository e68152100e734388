"""Community pages: server time per page, and per comment posted, in a busy store's community.

A new database (``--database PATH``: seeded when absent, reused as it is when present) gets a busy
store's community written straight into the tables: members (no password hashing), the demo
catalogue, boards with items, comments and replies, reactions, friendships, blocks, reviews, polls
with votes, suggestions with staff answers, members' flags that hid items, held items with the
system's flags, watched words (sizes: the options above). A shopper (a year a member, with
friends) signs in at /signin and a staff member at /manage/signin, each with their own Flask test
client of the real portal. Each page is requested once ("first": templates load, caches fill),
then --requests times; an answer other than 200 stops the run (exit status 1).

The write path: a comment POSTed to the busiest board, each a distinct ~200-character text so
screening (watched words, machine score) runs every time; the first POST also loads the
alt-profanity-check model (~2 s). Between POSTs, untimed, the shopper's comments are dated two
minutes back so screening's 10-a-minute limit does not refuse them; the run's config raises the
per-IP post limit for the same reason. Then ``community.screening.screen`` alone, on such texts.

The baseline is a bare Flask app whose one route returns a short string, through the same kind of
test client in the same run; p95/bare is a page's p95 over the bare app's p50 (as in
console_pages.py), the figure that travels between machines. Everything runs in this process:
server time (routing, sessions, queries, templates), no sockets. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import random
import tempfile
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import sqlite_utils
from benchlib import BenchError, goal_verdict, invocation, machine_info, percentile, run_guarded
from flask import Flask
from flask.testing import FlaskClient

from community.catalogue_import import seed_demo_catalogue
from community.schema_social import FLAG_REASONS, REACTIONS, WATCHED_WORD_ACTIONS
from community.screening import REASON_MACHINE, Limits, screen
from instore import members
from instore.clock import to_iso, utcnow
from instore.config import load_config
from instore.db import open_database, transaction
from instore.history_sim import create_bulk_members
from portal import create_app

GOAL_P95_MS = 200.0  # the console's goal (issue 6), held to the community pages too
REQUESTS = 50
SEED = 7
DAYS = 180  # the community's history spans half a year
FLAGS_TO_HIDE = 3  # the default [community] flags_to_hide
FLAGGERS = 60  # the members who report things: a few regulars, not everyone
SHOPPER_EMAIL, STAFF_EMAIL = "shopper@example.com", "staff@example.com"
PASSWORD = "bench community password"
# Screening's per-member limit stays; the per-IP one would refuse the bench's POSTs.
POST_LIMIT = "100000 per minute"
WORDS = (
    "trail", "jacket", "fits", "well", "colour", "navy", "linen", "summer", "scarf", "shoes",
    "comfortable", "size", "socks", "warm", "weekend", "hills", "rain", "boots", "light", "pack",
    "bottle", "holiday", "dress", "great", "quality", "price", "soft", "wash", "nice", "gift",
)  # fmt: skip
WATCHED = (
    "cheap pills", "darn", "scam", "refund", "counterfeit", "replica", "casino", "crypto",
    "free money", "click here", "knockoff", "idiot", "stupid", "dumb", "wholesale", "dropship",
    "loan offer", "giveaway", "dm me", "followers",
)  # fmt: skip
TABLES = {"board": "boards", "comment": "board_comments", "review": "product_reviews"}
TABLES["suggestion"] = "suggestions"
# Option name → (default, help): the seeded community's size.
SIZES: dict[str, tuple[int, str]] = {
    "members": (5_000, "members, inserted with SQL (no password hashing)"),
    "boards": (2_000, "boards: 20%% private, 30%% friends, 50%% public; 0.5%% held"),
    "items_per_board": (10, "catalogue products on each board"),
    "comments": (20_000, "board comments in all: 30%% replies, 0.2%% held by screening"),
    "hot_board_comments": (500, "of those, on the busiest public board (the board timed)"),
    "reactions": (5_000, "board reactions"),
    "friendships": (5_000, "accepted friendships between seeded members"),
    "blocks": (200, "blocks between seeded members"),
    "reviews": (3_000, "product reviews, most on a few products; 0.3%% held"),
    "polls": (20, "staff polls, a quarter of them closed"),
    "votes": (5_000, "poll votes, most on a few polls"),
    "suggestions": (1_000, "suggestions; 0.5%% held"),
    "answers": (300, "staff answers to suggestions"),
    "flags": (500, f"members' flags: {FLAGS_TO_HIDE} on each hidden item, one on others"),
    "hidden_items": (100, "items members' flags hid (comments, boards, reviews, suggestions)"),
    "watched_words": (20, f"watched words, the four actions in turn (at most {len(WATCHED)})"),
    "shopper_friends": (25, "friends of the signed-in shopper, each sharing boards"),
}
Row = tuple[object, ...]
T = TypeVar("T", bound=Hashable)
AUDIENCES = ("private", "friends", "public")


def _text(rng: random.Random, length: int) -> str:
    """Harmless words (no watched word, no link), about ``length`` characters."""
    words: list[str] = []
    while sum(len(word) + 1 for word in words) < length:
        words.append(rng.choice(WORDS))
    return " ".join(words).capitalize() + "."


@dataclass
class _Community:
    """Writes a community's rows; remembers the visible items (to flag) and the held ones."""

    db: sqlite_utils.Database
    sizes: dict[str, int]
    people: list[int]  # the seeded members, not the shopper or the staff member
    staff: int
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))  # noqa: S311
    flaggable: list[tuple[str, int, int]] = field(default_factory=list)  # (kind, id, author)
    held: list[tuple[str, int]] = field(default_factory=list)

    def ago(self, low: float = 0.01, high: float = DAYS) -> str:
        return to_iso(utcnow() - timedelta(days=self.rng.uniform(low, high)))

    def text(self, length: int) -> str:
        return _text(self.rng, length)

    def status(self, kind: str, item_id: int, author: int, held_percent: float) -> str:
        if self.rng.random() * 100 < held_percent:
            self.held.append((kind, item_id))
            return "held"
        self.flaggable.append((kind, item_id, author))
        return "visible"

    def ids(self, table: str, count: int) -> range:
        sql = f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}"  # noqa: S608 - fixed names
        first = int(self.db.conn.execute(sql).fetchone()[0])
        return range(first, first + count)

    def insert(self, table: str, columns: str, rows: Iterable[Row]) -> None:
        """``columns`` space-separated; a last ``created_at`` also fills ``updated_at`` when the
        table has one (boards, friendships)."""
        names = columns.split()
        if table in ("boards", "friendships"):
            names.append("updated_at")
            rows = [(*row, row[-1]) for row in rows]
        marks = ", ".join("?" for _ in names)
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608
        self.db.conn.executemany(sql, rows)

    def unique(self, count: int, make: Callable[[], T]) -> list[T]:
        """``count`` distinct values of ``make()``, in the order made (reproducible)."""
        found: dict[T, None] = {}
        while len(found) < count:
            found[make()] = None
        return list(found)

    def weighted(self, choices: list[int]) -> int:
        """The first choices far more often than the last (1/rank): a few get most."""
        return self.rng.choices(choices, [1 / rank for rank in range(1, len(choices) + 1)])[0]

    def boards(self, shopper: int) -> None:
        """Boards with items, comments (the first board gets the most), reactions, friends."""
        size, rng, people = self.sizes, self.rng, self.people
        products = [int(row[0]) for row in self.db.conn.execute("SELECT id FROM products")]
        boards: list[tuple[int, int, str, str, str, str, str]] = []
        for board in self.ids("boards", size["boards"]):
            owner, when, hot, text = rng.choice(people), self.ago(7), not boards, self.text(120)
            audience = "public" if hot else rng.choices(AUDIENCES, (20, 30, 50))[0]
            state = self.status("board", board, owner, 0 if hot else 0.5)
            boards.append((board, owner, f"Board {board}", text, audience, state, when))
        self.insert("boards", "id owner_id title description audience status created_at", boards)
        places = range(1, size["items_per_board"] + 1)
        rows: list[Row] = [
            (board[0], rng.choice(products), self.text(40), place, board[6])
            for board in boards
            for place in places
        ]
        self.insert("board_items", "board_id product_id note position created_at", rows)
        shared = [board[0] for board in boards if board[4] != "private" and board[5] == "visible"]
        self.flaggable.remove(("board", boards[0][0], boards[0][1]))  # the busiest stays up
        top_level: dict[int, list[int]] = {board: [] for board in shared}
        rows = []
        for number, comment in enumerate(self.ids("board_comments", size["comments"])):
            board = shared[0] if number < size["hot_board_comments"] else rng.choice(shared[1:])
            parents, author = top_level[board], rng.choice(people)
            text = self.text(rng.randint(40, 260))
            parent = rng.choice(parents) if parents and rng.random() < 0.3 else None
            parents += [comment] if parent is None else []
            state = self.status("comment", comment, author, 0.2)
            rows.append((comment, board, author, parent, text, state, self.ago(0, 7)))
        columns = "id board_id author_id parent_id body status created_at"
        self.insert("board_comments", columns, rows)
        reacted = self.unique(size["reactions"], lambda: (rng.choice(shared), rng.choice(people)))
        rows = [(*pair, rng.choice(REACTIONS), self.ago()) for pair in reacted]
        self.insert("board_reactions", "board_id member_id reaction created_at", rows)
        pairs = self.unique(size["friendships"], lambda: tuple(sorted(rng.sample(people, 2))))
        owners = sorted({board[1] for board in boards if board[0] in set(shared)})
        pairs += [(shopper, owner) for owner in rng.sample(owners, size["shopper_friends"])]
        rows = [(*pair, "accepted", self.ago()) for pair in pairs]
        self.insert("friendships", "requester_id addressee_id status created_at", rows)
        blocks = self.unique(size["blocks"], lambda: tuple(rng.sample(people, 2)))
        rows = [(*pair, self.ago()) for pair in blocks]
        self.insert("blocks", "blocker_id blocked_id created_at", rows)

    def feedback(self) -> None:
        """Reviews (a few products get most), polls with votes, suggestions with answers."""
        size, rng, people = self.sizes, self.rng, self.people
        products = [int(row[0]) for row in self.db.conn.execute("SELECT id FROM products")]
        pairs = self.unique(size["reviews"], lambda: (self.weighted(products), rng.choice(people)))
        rows: list[Row] = []
        ids = self.ids("product_reviews", len(pairs))
        for review, (product, author) in zip(ids, pairs, strict=True):
            state, text = self.status("review", review, author, 0.3), self.text(160)
            rows.append((review, product, author, rng.randint(1, 5), text, state, self.ago()))
        columns = "id product_id author_id rating body status created_at"
        self.insert("product_reviews", columns, rows)
        options: dict[int, list[int]] = {}
        closes = to_iso(utcnow() + timedelta(days=14))
        for number, poll in enumerate(self.ids("polls", size["polls"])):
            closed = self.ago(1, 20) if number % 4 == 3 else None
            row = (poll, self.text(80) + "?", self.staff, self.ago(30, 60), closes, closed)
            self.insert("polls", "id question created_by created_at closes_at closed_at", [row])
            options[poll] = list(self.ids("poll_options", rng.randint(3, 5)))
            rows = [(option, poll, f"Option {option}", option) for option in options[poll]]
            self.insert("poll_options", "id poll_id label position", rows)
        votes = self.unique(size["votes"], lambda: (self.weighted([*options]), rng.choice(people)))
        rows = [(poll, rng.choice(options[poll]), who, self.ago(1, 30)) for poll, who in votes]
        self.insert("poll_votes", "poll_id option_id member_id created_at", rows)
        rows, visible = [], []
        for suggestion in self.ids("suggestions", size["suggestions"]):
            author = rng.choice(people)
            state = self.status("suggestion", suggestion, author, 0.5)
            rows.append((suggestion, author, self.text(200), state, self.ago()))
            visible += [suggestion] if state == "visible" else []
        self.insert("suggestions", "id author_id body status created_at", rows)
        answered = rng.sample(visible, size["answers"])
        rows = [
            ("suggestion", item, self.staff, self.text(150), self.ago(0, 9)) for item in answered
        ]
        self.insert("staff_answers", "item_kind item_id staff_id body created_at", rows)

    def moderation(self) -> None:
        """Members' flags: FLAGS_TO_HIDE on each hidden item, one on others (half of those
        resolved); the system's flag on every held item; the watched words."""
        size, rng, flaggers = self.sizes, self.rng, self.people[:FLAGGERS]
        targets = rng.sample(self.flaggable, size["flags"])
        hidden, single = targets[: size["hidden_items"]], targets[size["hidden_items"] :]
        rows: list[Row] = []
        for kind, item, author in hidden:
            for flagger in rng.sample([m for m in flaggers if m != author], FLAGS_TO_HIDE):
                reason = rng.choice(FLAG_REASONS)
                rows.append((kind, item, flagger, reason, self.ago(0, 5), None, None))
            sql = f"UPDATE {TABLES[kind]} SET status = 'hidden' WHERE id = ?"  # noqa: S608
            self.db.conn.execute(sql, (item,))
        for kind, item, author in single[: size["flags"] - len(rows)]:
            flagger = rng.choice([m for m in flaggers if m != author])
            resolved = (self.ago(0, 5), "approve") if rng.random() < 0.5 else (None, None)
            reason = rng.choice(FLAG_REASONS)
            rows.append((kind, item, flagger, reason, self.ago(5, 30), *resolved))
        for kind, item in self.held:
            rows.append((kind, item, None, REASON_MACHINE, self.ago(0, 5), None, None))
        columns = "item_kind item_id flagger_id reason created_at resolved_at resolution"
        self.insert("flags", columns, rows)
        actions = WATCHED_WORD_ACTIONS
        words = enumerate(WATCHED[: size["watched_words"]])
        rows = [(word, actions[n % 4], self.staff, self.ago()) for n, word in words]
        self.insert("watched_words", "word action created_by created_at", rows)


def seed(path: Path, sizes: dict[str, int]) -> float:
    """Seed a fresh database at ``path``; returns the seconds it took."""
    began = time.perf_counter()
    db = open_database(path)
    try:
        create = functools.partial(members.create_member, db, password=PASSWORD)
        staff = create(display_name="Sam", email=STAFF_EMAIL, role="staff").id
        shopper = create(display_name="Ana", email=SHOPPER_EMAIL).id
        people = create_bulk_members(db, sizes["members"], seed=SEED)
        community = _Community(db, sizes, people, staff)
        seed_demo_catalogue(db)
        with transaction(db):
            # A year a member: past screening's new-member limits (3 posts a minute, no links).
            year_ago = to_iso(utcnow() - timedelta(days=365))
            db.conn.execute("UPDATE members SET created_at = ?", (year_ago,))
            community.boards(shopper)
            community.feedback()
            community.moderation()
    finally:
        db.conn.close()
    return time.perf_counter() - began


def _member_id(db: sqlite_utils.Database, email: str) -> int:
    found = members.find_by_identifier(db, email)
    if found is None:
        raise BenchError(f"{email} is not in the database (seeded by another script?)")
    return found.id


# The busiest item of each kind, as (id, how many): the pages that show the most.
BUSIEST = {
    "board": """SELECT b.id, COUNT(*) FROM boards b JOIN board_comments c ON c.board_id = b.id
        WHERE b.audience = 'public' AND b.status = 'visible' GROUP BY b.id""",
    "product": """SELECT product_id, COUNT(*) FROM product_reviews WHERE status = 'visible'
        GROUP BY product_id""",
    "poll": "SELECT poll_id, COUNT(*) FROM poll_votes GROUP BY poll_id",
    "friend": """SELECT owner_id, COUNT(*) FROM boards WHERE owner_id IN
        (SELECT addressee_id FROM friendships WHERE requester_id = :shopper) GROUP BY owner_id""",
    "flagged": """SELECT c.author_id, COUNT(*) FROM flags f JOIN board_comments c
        ON f.item_kind = 'comment' AND c.id = f.item_id
        WHERE f.flagger_id IS NOT NULL GROUP BY c.author_id""",
}


def _pages(db: sqlite_utils.Database, shopper: int) -> list[tuple[str, str]]:
    """(label, path) of every page timed, the busiest of each kind; /manage ones as staff."""
    top: dict[str, tuple[int, int]] = {}
    for kind, sql in BUSIEST.items():
        row = db.conn.execute(sql + " ORDER BY 2 DESC LIMIT 1", {"shopper": shopper}).fetchone()
        if row is None:
            raise BenchError(f"nothing to time: the data has no {kind} for its page")
        top[kind] = (int(row[0]), int(row[1]))
    (board, comments), (product, reviews), (poll, votes) = top["board"], top["product"], top["poll"]
    (friend, boards), (flagged, flags) = top["friend"], top["flagged"]
    return [
        ("/community", "/community"),
        ("/boards", "/boards"),
        (f"/boards/<id> ({comments} comments)", f"/boards/{board}"),
        ("/boards/<id>/shop", f"/boards/{board}/shop"),
        ("/products", "/products"),
        (f"/products/<id> ({reviews} reviews)", f"/products/{product}"),
        (f"/polls/<id> ({votes} votes)", f"/polls/{poll}"),
        ("/suggestions", "/suggestions"),
        (f"/members/<id> (a friend, {boards} boards)", f"/members/{friend}"),
        ("staff /manage/moderation", "/manage/moderation"),
        ("staff /manage/feedback", "/manage/feedback"),
        (f"staff .../member/<id> ({flags} flags)", f"/manage/moderation/member/{flagged}"),
    ]


Timing = tuple[float, list[float]]  # (first call ms, the next calls' ms)


def _measure(
    send: Callable[[int], int], expected: int, count: int, what: str, after: Callable[[], None]
) -> Timing:
    """Call ``send(n)`` once, then ``count`` times; BenchError on an unexpected answer."""
    samples = []
    for number in range(count + 1):
        began = time.perf_counter()
        status = send(number)
        samples.append((time.perf_counter() - began) * 1000)
        if status != expected:
            raise BenchError(f"{what} answered {status}, not {expected}")
        after()
    return samples[0], samples[1:]


def _get(client: FlaskClient, path: str, count: int) -> Timing:
    return _measure(lambda _: client.get(path).status_code, 200, count, f"GET {path}", lambda: None)


def _signed_in(app: Flask, path: str, email: str) -> FlaskClient:
    client = app.test_client()
    response = client.post(path, data={"identifier": email, "password": PASSWORD})
    if response.status_code != 302:
        raise BenchError(f"sign-in at {path} answered {response.status_code}, not 302")
    return client


def _bare_app() -> Flask:
    """The baseline: the least a Flask page can do."""
    app = Flask("bare")
    app.add_url_rule("/", "hello", lambda: "hello, shopper")
    return app


def _row(label: str, status: object, timing: Timing, bare: float, first: bool = True) -> None:
    samples, p95 = timing[1], percentile(timing[1], 0.95)
    print(
        f"{label:40} {status!s:>6} {f'{timing[0]:.1f}ms' if first else '':>9} "
        f"{percentile(samples, 0.5):>6.1f}ms {p95:>6.1f}ms {max(samples):>6.1f}ms "
        f"{p95 / bare:>8.0f}x  {goal_verdict(p95, GOAL_P95_MS)}"
    )


def _write_path(
    db: sqlite_utils.Database, client: FlaskClient, board: str, limits: Limits, count: int
) -> tuple[Timing, Timing]:
    """A comment POSTed ``1 + count`` times with distinct texts, then ``screen`` alone."""
    rng, shopper = random.Random(SEED + 1), _member_id(db, SHOPPER_EMAIL)  # noqa: S311
    texts = [_text(rng, 190) for _ in range(2 * count + 2)]

    def post(number: int) -> int:
        data = {"body": texts[number], "parent_id": ""}
        return client.post(f"{board}/comments", data=data).status_code

    def age_my_comments() -> None:
        # Screening lets a member post 10 items a minute: date the shopper's two minutes back.
        with transaction(db):
            db.conn.execute(
                "UPDATE board_comments SET created_at = ? WHERE author_id = ?",
                (to_iso(utcnow() - timedelta(minutes=2)), shopper),
            )

    def screen_once(number: int) -> int:
        texts_in = {"body": texts[count + 1 + number]}
        return 200 if screen(db, shopper, texts_in, utcnow(), limits).status == "visible" else 0

    posted = _measure(post, 302, count, f"POST {board}/comments", age_my_comments)
    return posted, _measure(screen_once, 200, count, "screen()", lambda: None)


def run(args: argparse.Namespace) -> int:
    sizes = {name: int(getattr(args, name)) for name in SIZES}
    with tempfile.TemporaryDirectory(prefix="instore-bench-") as tmp:
        path = args.database or Path(tmp) / "instore.db"
        if not path.exists():
            print(f"seeded a new database in {seed(path, sizes):.1f} s")
        db = open_database(path)
        tables = ("members", "products", *TABLES.values(), "board_items", "board_reactions",
                  "friendships", "blocks", "polls", "poll_votes", "staff_answers", "flags",
                  "watched_words")  # fmt: skip
        count_sql = "SELECT COUNT(*) FROM {}"
        counts = [f"{db.conn.execute(count_sql.format(t)).fetchone()[0]:,} {t}" for t in tables]
        print("data: " + ", ".join(counts))
        shopper = _member_id(db, SHOPPER_EMAIL)
        environ = {
            "INSTORE_DATABASE_PATH": str(path),
            "INSTORE_PORTAL_SECRET_KEY": "bench",
            "INSTORE_PORTAL_COMMUNITY_POST_LIMIT": POST_LIMIT,
        }
        config = load_config(environ=environ)
        app = create_app(config, {"TESTING": True, "WTF_CSRF_ENABLED": False})
        member = _signed_in(app, "/signin", SHOPPER_EMAIL)
        staff = _signed_in(app, "/manage/signin", STAFF_EMAIL)
        base = _get(_bare_app().test_client(), "/", args.requests)
        bare = percentile(base[1], 0.5)
        header = f"{'first':>9} {'p50':>8} {'p95':>8} {'max':>8} {'p95/bare':>9}"
        print(f"{'page (GET unless said)':40} {'status':>6} {header}")
        _row("bare Flask, one short string", 200, base, bare, first=False)
        pages = _pages(db, shopper)
        for label, page in pages:
            client = staff if page.startswith("/manage") else member
            _row(label, 200, _get(client, page, args.requests), bare)
        limits = Limits.from_config(config["community"])
        posted, screened = _write_path(db, member, pages[2][1], limits, args.requests)
        _row("POST /boards/<id>/comments", 302, posted, bare)
        _row("screen() alone, ~190 chars", "-", screened, bare)
        statuses = db.conn.execute(
            "SELECT status, COUNT(*) FROM board_comments WHERE author_id = ? GROUP BY status",
            (shopper,),
        ).fetchall()
        print("the bench's comments: " + ", ".join(f"{n} {status}" for status, n in statuses))
        print("first POST: loads the machine scorer model; p95/bare: p95 over bare Flask's p50")
        for line in machine_info(f"database {path.stat().st_size / 1e6:,.0f} MB"):
            print(line)
        print("reproduce: " + invocation())
        db.conn.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        usage="%(prog)s [--database PATH] [--requests N] [--SIZE N ...]",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1].replace("%", "%%"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--database", type=Path, metavar="PATH", help="a database to reuse (seeded when absent)"
    )
    parser.add_argument(
        "--requests", type=int, default=REQUESTS, metavar="N",
        help=f"timed requests per page after the first (default {REQUESTS})",
    )  # fmt: skip
    sizes = parser.add_argument_group("sizes of the seeded community (only for a new database)")
    for name, (default, text) in SIZES.items():
        option = f"--{name.replace('_', '-')}"
        help_text = f"{text} (default {default:,})"
        sizes.add_argument(option, type=int, default=default, metavar="N", help=help_text)
    args = parser.parse_args()
    if args.hidden_items * FLAGS_TO_HIDE > args.flags or args.requests < 1:
        parser.error(f"--flags must be at least {FLAGS_TO_HIDE} x --hidden-items; --requests >= 1")
    return run_guarded("community_pages.py", lambda: run(args), interrupted="nothing to clean up")


if __name__ == "__main__":
    raise SystemExit(main())
