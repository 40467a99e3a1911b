"""Serving fixtures: a tiny but real world (lake, LanceDB content index with real MiniLM embeddings,
an EASE champion registered in a tmp MLflow sqlite store) and TestClients of the BentoML service.

The world is built once per session; each ``client`` fixture starts a fresh service instance (fresh
rate limiters and caches) whose settings come from an overlay file via ``MEDIA_GATEWAY_CONFIG``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from starlette.testclient import TestClient

from core.content import content_text
from core.lake import write_table
from core.settings import Settings, load_settings, workspace_paths
from core.vector_index import build_content_rows, write_content_index
from mlops.promotion import register_champion as seed_champion
from models.collaborative.ease import EASERecommender
from models.embeddings.encoder import encode_texts
from serving.auth import SCOPES, SECRET_ENV, issue_token

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
ALL_SCOPES = list(SCOPES)
"""Every scope the service defines (:data:`serving.auth.SCOPES`): a default test token has them all."""

# (title_id, type, title, year, genres, keywords, runtime, popularity, overview)
TITLES: list[tuple[Any, ...]] = [
    ("movie:27205", "movie", "Inception", 2010, ["Action", "Science Fiction"],
     ["dream", "heist"], 148, 80.0, "A thief steals secrets by entering people's dreams."),
    ("movie:157336", "movie", "Interstellar", 2014, ["Science Fiction", "Drama"],
     ["space", "time travel"], 169, 90.0, "Explorers travel through a wormhole to save humanity."),
    ("movie:603", "movie", "The Matrix", 1999, ["Action", "Science Fiction"],
     ["artificial intelligence", "simulation"], 136, 70.0,
     "A hacker learns reality is a simulation run by machines."),
    ("movie:329865", "movie", "Arrival", 2016, ["Science Fiction", "Drama"],
     ["alien", "language"], 116, 40.0, "A linguist talks with aliens who arrived on Earth."),
    ("movie:78", "movie", "Blade Runner", 1982, ["Science Fiction", "Thriller"],
     ["android", "dystopia"], 117, 35.0, "A detective hunts rogue androids in a dark future city."),
    ("movie:8363", "movie", "Superbad", 2007, ["Comedy"], ["high school", "friendship"], 113, 30.0,
     "Two awkward teenagers try to get to a party before graduation."),
    ("movie:12133", "movie", "Step Brothers", 2008, ["Comedy"], ["family relationships"], 98,
     25.0, "Two grown men become stepbrothers and rivals."),
    ("movie:120467", "movie", "The Grand Budapest Hotel", 2014, ["Comedy", "Drama"],
     ["hotel", "absurd"], 100, 45.0, "A concierge and his lobby boy are framed for murder."),
    ("movie:138843", "movie", "The Conjuring", 2013, ["Horror", "Thriller"],
     ["haunted house", "demon"], 112, 50.0, "Paranormal investigators help a family haunted by a demon."),
    ("movie:493922", "movie", "Hereditary", 2018, ["Horror", "Mystery"], ["grief", "demon"], 127,
     38.0, "A grieving family is haunted after their grandmother dies."),
    ("movie:509", "movie", "Notting Hill", 1999, ["Romance", "Comedy"], ["love", "bookshop"], 124,
     28.0, "A bookshop owner falls in love with a famous actress."),
    ("movie:4348", "movie", "Pride & Prejudice", 2005, ["Romance", "Drama"], ["love", "wedding"],
     129, 26.0, "Elizabeth Bennet and Mr. Darcy overcome pride and prejudice."),
    ("movie:862", "movie", "Toy Story", 1995, ["Animation", "Family", "Comedy"],
     ["toy", "friendship"], 81, 60.0, "Toys come to life when their owner is away."),
    ("movie:12", "movie", "Finding Nemo", 2003, ["Animation", "Family"], ["ocean", "fish"], 100,
     55.0, "A clownfish crosses the ocean to find his son."),
    ("movie:109445", "movie", "Frozen", 2013, ["Animation", "Family", "Fantasy"],
     ["snow", "sister"], 102, 65.0, "A princess sets out to find her sister who froze the kingdom."),
    ("movie:807", "movie", "Se7en", 1995, ["Crime", "Thriller"], ["serial killer"], 127, 42.0,
     "Two detectives hunt a serial killer who uses the seven deadly sins."),
    ("movie:210577", "movie", "Gone Girl", 2014, ["Thriller", "Mystery"], ["missing person"], 149,
     33.0, "A man becomes the suspect when his wife disappears."),
    ("movie:1949", "movie", "Zodiac", 2007, ["Crime", "Thriller"], ["serial killer"], 157, 22.0,
     "A cartoonist becomes obsessed with the Zodiac killer."),
    ("tv:1396", "series", "Breaking Bad", 2008, ["Drama", "Crime"], ["drug"], 47, 85.0,
     "A chemistry teacher turns to making drugs."),
    ("tv:2316", "series", "The Office", 2005, ["Comedy"], ["workplace"], 22, 75.0,
     "Everyday life of office employees, filmed as a documentary."),
    ("tv:66732", "series", "Stranger Things", 2016, ["Sci-Fi & Fantasy", "Mystery", "Drama"],
     ["supernatural", "small town"], 50, 95.0, "Kids in a small town face supernatural forces."),
    ("tv:1668", "series", "Friends", 1994, ["Comedy", "Romance"], ["friendship"], 22, 70.0,
     "Six friends live and love in New York."),
    ("tv:70523", "series", "Dark", 2017, ["Sci-Fi & Fantasy", "Mystery", "Drama"],
     ["time travel", "small town"], 55, 40.0, "Missing children expose a time-travel conspiracy."),
    ("tv:1044", "series", "Planet Earth", 2006, ["Documentary"], ["nature"], 50, 20.0,
     "The natural world filmed across every habitat."),
]  # fmt: skip

# (title_id, country, provider_id, provider_name, monetization, price)
OFFERS: list[tuple[Any, ...]] = [
    ("movie:27205", "US", "netflix", "Netflix", "FLATRATE", None),
    ("movie:27205", "US", "amazon", "Amazon Video", "RENT", 3.99),
    ("movie:27205", "GB", "netflix", "Netflix", "FLATRATE", None),
    ("movie:157336", "US", "hulu", "Hulu", "FLATRATE", None),
    ("movie:157336", "US", "amazon", "Amazon Video", "BUY", 12.99),
    ("movie:603", "US", "netflix", "Netflix", "FLATRATE", None),
    ("movie:329865", "US", "hulu", "Hulu", "FLATRATE", None),
    ("movie:78", "US", "amazon", "Amazon Video", "RENT", 2.99),
    ("movie:8363", "US", "netflix", "Netflix", "FLATRATE", None),
    ("movie:12133", "US", "hulu", "Hulu", "FLATRATE", None),
    ("movie:120467", "US", "netflix", "Netflix", "FLATRATE", None),
    ("movie:138843", "US", "netflix", "Netflix", "FLATRATE", None),
    ("movie:493922", "US", "hulu", "Hulu", "FLATRATE", None),
    ("movie:509", "US", "netflix", "Netflix", "FLATRATE", None),
    ("movie:4348", "US", "tubi", "Tubi", "FREE", None),
    ("movie:862", "US", "disneyplus", "Disney Plus", "FLATRATE", None),
    ("movie:12", "US", "disneyplus", "Disney Plus", "FLATRATE", None),
    ("movie:109445", "US", "disneyplus", "Disney Plus", "FLATRATE", None),
    ("movie:807", "US", "netflix", "Netflix", "FLATRATE", None),
    ("movie:210577", "US", "hulu", "Hulu", "FLATRATE", None),
    ("movie:1949", "US", "netflix", "Netflix", "FLATRATE", None),
    ("tv:1396", "US", "netflix", "Netflix", "FLATRATE", None),
    ("tv:2316", "US", "netflix", "Netflix", "FLATRATE", None),
    ("tv:66732", "US", "netflix", "Netflix", "FLATRATE", None),
    ("tv:1668", "US", "hulu", "Hulu", "FLATRATE", None),
    ("tv:70523", "US", "netflix", "Netflix", "FLATRATE", None),
    ("tv:1044", "GB", "bbc", "BBC iPlayer", "FREE", None),
]

SCIFI = ["movie:27205", "movie:157336", "movie:603", "movie:329865", "movie:78", "tv:70523"]
COMEDY = ["movie:8363", "movie:12133", "movie:120467", "tv:2316", "tv:1668", "movie:509"]
HORROR = ["movie:138843", "movie:493922", "movie:807", "movie:1949", "movie:210577"]
FAMILY = ["movie:862", "movie:12", "movie:109445", "tv:1044"]
HISTORIES: dict[str, list[str]] = {
    "alice": SCIFI[:3],
    "bob": COMEDY[:3],
    "carol": HORROR[:3],
    "dave": FAMILY[:2],
    **{f"sf{i}": SCIFI[i % 3 : i % 3 + 4] for i in range(6)},
    **{f"co{i}": COMEDY[i % 3 : i % 3 + 4] for i in range(6)},
    **{f"ho{i}": HORROR[i % 2 : i % 2 + 4] for i in range(6)},
    **{f"fa{i}": FAMILY[i % 2 : i % 2 + 3] for i in range(4)},
}


def titles_frame() -> pl.DataFrame:
    rows = []
    for tid, kind, title, year, genres, keywords, runtime, pop, overview in TITLES:
        rows.append(
            {
                "title_id": tid,
                "tmdb_id": int(tid.split(":")[1]),
                "imdb_id": None,
                "type": kind,
                "title": title,
                "original_title": title,
                "year": year,
                "release_date": date(year, 6, 1),
                "overview": overview,
                "genres": genres,
                "keywords": keywords,
                "cast": ["Actor One", "Actor Two"],
                "directors": ["Some Director"],
                "runtime": runtime,
                "language": "en",
                "popularity": pop,
                "vote_average": 7.5,
                "vote_count": 1000,
                "poster_path": f"/{tid.replace(':', '_')}.jpg",
                "source": "tmdb",
            }
        )
    df = pl.DataFrame(rows)
    texts = [content_text(r) for r in df.iter_rows(named=True)]
    return df.with_columns(pl.Series("content_hash", [str(hash(t)) for t in texts]))


def availability_frame() -> pl.DataFrame:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    return pl.DataFrame(
        [
            {
                "title_id": tid,
                "country": country,
                "provider_id": pid,
                "provider_name": name,
                "monetization": kind,
                "presentation_type": "HD",
                "price": price,
                "currency": "USD" if price is not None else None,
                "deep_link": f"https://{pid}.example/watch/{tid.replace(':', '-')}",
                "source": "justwatch",
                "last_seen": now,
            }
            for tid, country, pid, name, kind, price in OFFERS
        ]
    )


def events_frame() -> pl.DataFrame:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for user, items in HISTORIES.items():
        for i, tid in enumerate(items):
            when = start + timedelta(days=i, hours=len(user))
            rows.append(
                {
                    "event_id": f"{user}-{tid}",
                    "user_id": user,
                    "title_id": tid,
                    "raw_title": tid,
                    "source": "movielens",
                    "event_time": when,
                    "event_date": when.date(),
                    "rating": 4.0,
                    "rating_scale": 5.0,
                    "weight": 1.0,
                    "import_batch": "fixture",
                }
            )
    return pl.DataFrame(rows)


def register_champion(settings: Settings, recommender: Any, workdir: Path) -> str:
    """Log ``recommender`` as a new registered version and move ``@champion`` to it."""
    return seed_champion(
        settings, recommender, workdir / f"model-{time.time_ns()}", {"ndcg_at_10": 0.5}
    )


def interactions() -> pl.DataFrame:
    return events_frame().select(
        pl.col("user_id"), pl.col("title_id").alias("item_id"), pl.col("weight")
    )


@dataclass
class World:
    root: Path
    overrides: dict[str, Any]

    def overlay(self, name: str, **serving: Any) -> Path:
        """An overlay YAML pointing at this world (plus ``serving`` overrides)."""
        data: dict[str, Any] = {"paths": dict(self.overrides["paths"])}
        # each freeze is a full collection of the whole pytest heap: off unless a test asks
        data["serving"] = {"freeze_heap": False, **serving}
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def settings(self) -> Settings:
        return load_settings("configs/base.yaml", overrides=self.overrides)


def build_world(root: Path, *, champion: bool) -> World:
    var = root / "var"
    overrides = {"paths": workspace_paths(var)}
    world = World(root, overrides)
    settings = world.settings()
    titles = titles_frame()
    availability = availability_frame()
    write_table(settings.paths.lake, "titles", titles)
    write_table(settings.paths.lake, "availability", availability)
    write_table(settings.paths.lake, "watch_events", events_frame())
    texts = [content_text(r) for r in titles.iter_rows(named=True)]
    vectors = encode_texts(texts)
    embeddings = pl.DataFrame({"title_id": titles["title_id"], "vector": vectors.tolist()})
    rows = build_content_rows(titles, availability, embeddings)
    write_content_index(settings.paths.lancedb, rows)
    if champion:
        model = EASERecommender().fit(interactions())
        register_champion(settings, model, root)
    return world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Lake + content index + EASE champion (built once per session)."""
    return build_world(tmp_path_factory.mktemp("serving-world"), champion=True)


@pytest.fixture
def fresh_world(world: World, tmp_path: Path) -> World:
    """A private copy of the session world (tests that write feedback, profiles or erasures)."""
    shutil.copytree(world.root / "var", tmp_path / "var")
    return World(tmp_path, {"paths": workspace_paths(tmp_path / "var")})


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("MEDIA_GATEWAY_POLL_S", "30")
    return monkeypatch


@pytest.fixture(scope="session")
def asgi_app() -> Any:
    """The service's ASGI app, built once: every ``with TestClient(app)`` runs its start-up again
    (a new service instance reading the environment), while BentoML's Prometheus metrics, which
    can be registered only once per process, stay registered once."""
    from serving.service import MediaGateway

    return MediaGateway.to_asgi()


def start_client(app: Any, overlay: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("MEDIA_GATEWAY_CONFIG", str(overlay))
    with TestClient(app) as client:
        deadline = time.monotonic() + 120
        while client.get("/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f"service not ready: {client.get('/status').text}")
            time.sleep(0.1)
        yield client


@pytest.fixture
def client(
    asgi_app: Any, fresh_world: World, service_env: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """A started service over a private copy of the world, generous rate limits."""
    overlay = fresh_world.overlay("serve", anonymous_per_minute=1000, authenticated_per_minute=1000)
    yield from start_client(asgi_app, overlay, service_env)


@pytest.fixture
def strict_client(
    asgi_app: Any, fresh_world: World, service_env: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """A started service with the production limits (10 anonymous / 3 authenticated per minute)."""
    overlay = fresh_world.overlay("strict", anonymous_per_minute=10, authenticated_per_minute=3)
    yield from start_client(asgi_app, overlay, service_env)


@pytest.fixture
def fast_poll_client(
    asgi_app: Any, fresh_world: World, service_env: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """Like ``client`` but polling the registry every 0.3 s (hot-swap tests)."""
    service_env.setenv("MEDIA_GATEWAY_POLL_S", "0.3")
    overlay = fresh_world.overlay("poll", anonymous_per_minute=1000, authenticated_per_minute=1000)
    yield from start_client(asgi_app, overlay, service_env)


@pytest.fixture(scope="session")
def bare_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Lake + content index but nothing promoted in its (empty) MLflow store."""
    return build_world(tmp_path_factory.mktemp("bare-world"), champion=False)


@pytest.fixture
def bare_client(
    asgi_app: Any, bare_world: World, service_env: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    overlay = bare_world.overlay("bare", anonymous_per_minute=1000, authenticated_per_minute=1000)
    yield from start_client(asgi_app, overlay, service_env)


def make_token(world: World, user: str, scopes: list[str] | None = None, ttl: int = 5) -> str:
    return issue_token(
        world.settings(),
        user,
        ALL_SCOPES if scopes is None else scopes,
        ttl,
        secret=SECRET.encode(),
    )


@pytest.fixture
def bearer(fresh_world: World) -> Callable[..., dict[str, str]]:
    """``bearer(user, scopes=None)`` -> an Authorization header for a valid token."""

    def header(user: str, scopes: list[str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(fresh_world, user, scopes)}"}

    return header


@pytest.fixture
def promote(fresh_world: World) -> Callable[[], str]:
    """``promote()`` registers a popularity model as a new version and moves ``@champion``."""
    from models.collaborative.popularity import PopularityRecommender

    def run() -> str:
        model = PopularityRecommender().fit(interactions())
        return register_champion(fresh_world.settings(), model, fresh_world.root)

    return run


@pytest.fixture
def signing(fresh_world: World) -> tuple[Settings, bytes]:
    """(settings, HS256 key) the test service validates tokens with."""
    return fresh_world.settings(), SECRET.encode()


@pytest.fixture
def feedback_dir(fresh_world: World) -> Path:
    return Path(fresh_world.overrides["paths"]["feedback"])


@pytest.fixture
def read_only_dir() -> Iterator[Callable[[Path], Path]]:
    """``read_only_dir(path)`` makes ``path`` a folder nobody can write, even root: a read-only
    tmpfs mount when running as root (permissions do not stop root), else mode 0555."""
    import os
    import subprocess

    made: list[tuple[Path, bool]] = []

    def make(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], check=True
            )
            made.append((path, True))
        else:
            path.chmod(0o555)
            made.append((path, False))
        return path

    yield make
    for path, mounted in made:
        if mounted:
            subprocess.run(["umount", str(path)], check=True)
        else:
            path.chmod(0o755)


def client_seen_by_app(
    trusted_proxies: list[str],
    peer: str,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[str, str]:
    """(client host, scheme) the app sees for a request from ``peer`` with ``headers``, in a uvicorn
    configured as the service configures it: ``configure_server_proxy_headers`` at import, then a
    ``uvicorn.Config`` that, like BentoML's worker, passes no ``forwarded_allow_ips`` of its own."""
    import asyncio

    import uvicorn

    from serving.ratelimit import FORWARDED_ALLOW_ENV, configure_server_proxy_headers

    monkeypatch.setenv(FORWARDED_ALLOW_ENV, "127.0.0.1")  # uvicorn's default, restored afterwards
    configure_server_proxy_headers(trusted_proxies)
    seen: dict[str, Any] = {}

    async def probe(scope: dict, receive: Any, send: Any) -> None:
        seen.update(client=scope["client"][0], scheme=scope["scheme"])

    config = uvicorn.Config(app=probe, log_config=None)
    config.load()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": (peer, 50000),
        "server": ("127.0.0.1", 3000),
    }

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        return None

    asyncio.run(config.loaded_app(scope, receive, send))
    return seen["client"], seen["scheme"]
