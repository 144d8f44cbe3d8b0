"""The warm runner: entry-point runs forked from a process that has already imported the
scientific stack, instead of a fresh interpreter per run.

Why: a fresh ``python`` that imports numpy, pandas, scikit-learn and skops costs seconds on
a loaded machine (9 to 11 s measured), far more than the scheduling itself; a fork of a process
that holds them costs milliseconds. Why not ``multiprocessing``'s forkserver: its children
are not ours to ``wait4`` (no peak memory), it re-imports the server's ``__main__`` in each
child (the whole web app under ``aiwarden serve``), and it gives no way to put the run's
marker where the orphan finder looks. So this is a small zygote of our own:

- the **zygote** (``python -m aiwarden.training.warm``), one per server process, started in
  the background (:meth:`WarmRunner.prestart`) when the server finds or is given a pipeline
  with an entry point, so that its imports are not the first run's, else on the first
  entry-point run; it imports the preload list once and then only forks;
- per run it forks a **shepherd**, which forks the **run process**: that one starts a
  session of its own (a cancel or a time limit kills its whole tree), applies ``RLIMIT_AS``,
  sends stdout and stderr to the run's log, takes the run's environment, writes its marker
  (``process.json``: pid, start time, boot id; see aiwarden/training/orphans.py) and calls
  the same worker a cold run executes. The shepherd ``wait4``\\ s it and reports the exit
  status and peak memory to the server over a socket of the run's own;
- a run process that crashes takes nothing with it; a zygote that died is started again on
  the next run (:attr:`WarmRunner.restarts`); a server that died closes the zygote's socket
  and the zygote exits, while the run process lives on in its session exactly as a cold
  run's would, for the restarted server to find and kill;
- made ``die_with_parent`` (on a Dask worker, where nobody comes back to clean up), the runs
  go with the zygote instead: its exit sends each shepherd SIGTERM (``PR_SET_PDEATHSIG``),
  which kills its run's process group, and a run process whose shepherd died gets SIGKILL
  (aiwarden/training/_deathsig.py).

Command pipelines are not affected (they run whatever they name, cold). What a warm run
cannot see: a change to a *preloaded* library since the zygote started (restart the server
after upgrading numpy or scikit-learn); the pipeline's own modules are imported in each run.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import logging
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiwarden.training._deathsig import death_signal_hook

__all__ = ["DEFAULT_PRELOAD", "MARKER_FILE", "WarmRun", "WarmRunner", "WarmStopped",
           "WarmUnavailable", "boot_id", "start_time"]

DEFAULT_PRELOAD = ("numpy", "pandas", "pyarrow.parquet", "sklearn.base", "sklearn.linear_model",
                   "sklearn.ensemble", "sklearn.pipeline", "sklearn.compose",
                   "sklearn.preprocessing", "sklearn.metrics", "skops.io",
                   "aiwarden.training.worker")
MARKER_FILE = "process.json"
_log = logging.getLogger("aiwarden.training")
_MSG = 1 << 20


class WarmUnavailable(RuntimeError):
    """The zygote could not take the run (it failed to start or died): run it cold."""


class WarmStopped(RuntimeError):
    """The run was cancelled or overstayed while the zygote was still importing."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def boot_id() -> str:
    """This boot's id: a (pid, start time) pair is unique only within one boot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


class WarmRun:
    """A run process the zygote started: its pid, and the socket its shepherd reports on."""

    def __init__(self, pid: int, conn: socket.socket) -> None:
        self.pid, self.conn = pid, conn

    def poll(self, timeout: float) -> dict[str, Any] | None:
        """The shepherd's final report (``status``, ``maxrss_kb``), ``{}`` when the shepherd
        died without one, or None while the run goes on."""
        ready, _, _ = select.select([self.conn], [], [], timeout)
        if not ready:
            return None
        try:
            msg = self.conn.recv(_MSG)
        except OSError:
            msg = b""
        return json.loads(msg) if msg else {}

    def close(self) -> None:
        self.conn.close()


class WarmRunner:
    """The server's handle on its zygote (thread-safe; one per server process)."""

    def __init__(self, preload: Sequence[str] = DEFAULT_PRELOAD,
                 start_timeout: float = 300.0, die_with_parent: bool = False) -> None:
        self.preload = tuple(preload)
        self.start_timeout = start_timeout
        self.die_with_parent = die_with_parent
        self.restarts = 0
        self.failed_imports: list[str] = []
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._ready = False
        self._started = 0.0

    @property
    def pid(self) -> int | None:
        """The zygote's pid while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _stop_locked(self) -> None:
        ready, self._ready = self._ready, False
        if self._control is not None:
            self._control.close()  # the zygote reads EOF and exits
            self._control = None
        if self._proc is not None:
            try:
                if not ready:  # still importing: it would read the EOF only after that
                    self._proc.kill()
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def _spawn_locked(self) -> None:
        """Start a zygote unless one runs (importing or ready); one that died is replaced."""
        if self._proc is not None and self._proc.poll() is None:
            return
        if self._proc is not None:  # it died: start another
            self._stop_locked()
            self.restarts += 1
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "aiwarden.training.warm", str(theirs.fileno()),
                 ",".join(self.preload), "die" if self.die_with_parent else "live"],
                pass_fds=[theirs.fileno()], cwd=os.getcwd(),
                stdin=subprocess.DEVNULL)
        except OSError as exc:
            ours.close()
            raise WarmUnavailable(f"could not start the warm runner: {exc}") from exc
        finally:
            theirs.close()
        self._proc, self._control, self._started = proc, ours, time.monotonic()

    def prestart(self) -> bool:
        """Start the zygote's imports now, without waiting for them, so that the first run
        finds it ready instead of paying them (seconds); a zygote that died is replaced.
        False when it cannot start (the runs then go cold, as without a zygote)."""
        with self._lock:
            try:
                self._spawn_locked()
            except WarmUnavailable as exc:
                _log.warning("%s", exc)
                return False
        return True

    def wait_ready(self, timeout: float) -> bool:
        """Whether the zygote has imported its preload list, waiting up to ``timeout``
        seconds (starting it when none runs): what a server start-up's prestart bought."""
        deadline = time.monotonic() + timeout
        try:
            with self._lock:
                self._ensure_locked(lambda: "time" if time.monotonic() > deadline else None)
        except (WarmStopped, WarmUnavailable):
            return False
        return True

    def _ensure_locked(self, halt: Callable[[], str | None]) -> socket.socket:
        alive = self._proc is not None and self._proc.poll() is None
        if alive and self._ready and self._control is not None:
            return self._control
        self._spawn_locked()
        assert self._control is not None
        # still importing (perhaps for a run that was cancelled meanwhile): wait, but a
        # cancel or the time limit of this run is answered at once; the zygote goes on
        while not select.select([self._control], [], [], 0.2)[0]:
            why = halt()
            if why is not None:
                raise WarmStopped(why)
            if time.monotonic() - self._started > self.start_timeout:
                self._stop_locked()
                raise WarmUnavailable(f"the warm runner did not start within "
                                      f"{self.start_timeout:g} s")
        msg = self._control.recv(_MSG)
        if not msg:
            self._stop_locked()
            raise WarmUnavailable("the warm runner did not start (its stderr is the server's)")
        self.failed_imports = list(json.loads(msg).get("failed", []))
        self._ready = True
        return self._control

    def start(self, request: Mapping[str, Any], timeout: float = 60.0,
              halt: Callable[[], str | None] = lambda: None) -> WarmRun:
        """Fork a run process for ``request`` (``run_dir``, ``log``, ``entry``, ``cwd``,
        ``env``, ``memory_mb``); :class:`WarmUnavailable` when the zygote cannot,
        :class:`WarmStopped` when ``halt`` says why to give up while it is still starting."""
        payload = json.dumps(dict(request)).encode()
        with self._lock:
            for attempt in (0, 1):  # a zygote that died since the last run: start another
                control = self._ensure_locked(halt)
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                try:
                    socket.send_fds(control, [payload], [theirs.fileno()])
                    break
                except OSError as exc:
                    ours.close()
                    if self._proc is not None:  # half dead: the next attempt starts anew
                        self._proc.kill()
                        self._proc.wait()
                    if attempt:
                        raise WarmUnavailable(f"the warm runner refused the run: {exc}") from exc
                finally:
                    theirs.close()
        ready, _, _ = select.select([ours], [], [], timeout)
        msg = ours.recv(_MSG) if ready else b""
        if not msg:
            ours.close()
            raise WarmUnavailable("the warm runner died before starting the run")
        reply = json.loads(msg)
        if "pid" not in reply:
            ours.close()
            raise WarmUnavailable(f"the warm runner could not fork: {reply.get('error')}")
        return WarmRun(int(reply["pid"]), ours)

    def close(self) -> None:
        """Stop the zygote (runs it started go on to their end; their shepherds report)."""
        with self._lock:
            self._stop_locked()


# ------------------------------------------------------------------------------ the zygote
def _run_process(req: dict[str, Any]) -> int:
    """In the forked run process: become the run, then call the worker a cold run runs."""
    os.setsid()
    if req.get("memory_mb"):
        size = int(req["memory_mb"]) * 2 ** 20
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT
                      else signal.SIG_DFL)
    log = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    # /proc/PID/environ shows the zygote's environment, not this one: the orphan finder
    # knows this process by its marker instead (pid, start time, boot)
    pid = os.getpid()
    Path(req["run_dir"], MARKER_FILE).write_text(json.dumps(
        {"pid": pid, "start_time": start_time(pid), "boot_id": boot_id()}))
    sys.argv = ["aiwarden.training.worker", "--entry", req["entry"], req["run_dir"]]
    from aiwarden.training import worker

    return worker.main(["--entry", req["entry"], req["run_dir"]])


def _shepherd(req: dict[str, Any], conn: socket.socket,
              zygote_death: Callable[[], None] | None = None) -> None:
    """Fork the run process, report its pid, wait for it, report how it ended.
    ``zygote_death`` (die with parent): the zygote's exit kills the run's process group."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    own_death = death_signal_hook(signal.SIGKILL) if zygote_death is not None else None
    child = os.fork()
    if child == 0:
        if own_death is not None:  # first: a shepherd killed outright takes the run along
            own_death()
        conn.close()
        code = 70
        try:
            code = _run_process(req)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    if zygote_death is not None:
        def end_run(signum: int, frame: Any) -> None:
            with contextlib.suppress(OSError):  # the group, and the leader before its setsid
                os.killpg(child, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
            os._exit(1)
        signal.signal(signal.SIGTERM, end_run)
        zygote_death()
    with contextlib.suppress(OSError):  # the server gone: the run lives on, as a cold one
        conn.send(json.dumps({"pid": child}).encode())
    _, status, usage = os.wait4(child, 0)
    with contextlib.suppress(OSError):
        conn.send(json.dumps({"status": status, "maxrss_kb": usage.ru_maxrss}).encode())


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main(argv: list[str] | None = None) -> int:
    """``python -m aiwarden.training.warm FD PRELOAD``: the zygote's loop."""
    args = sys.argv[1:] if argv is None else argv
    control = socket.socket(fileno=int(args[0]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is the server's
    # resolved once, here: each shepherd only makes the system call
    zygote_death = (death_signal_hook(signal.SIGTERM) if len(args) > 2 and args[2] == "die"
                    else None)
    failed = []
    for name in filter(None, (args[1] if len(args) > 1 else "").split(",")):
        try:
            importlib.import_module(name)
        except Exception as exc:  # not installed: its runs import it themselves
            failed.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
    gc.collect()
    gc.freeze()  # the preloaded objects stay out of the collector: children share the pages
    try:
        control.send(json.dumps({"ready": True, "failed": failed}).encode())
    except OSError:  # the server (or worker) went away while this imported: nothing to serve
        return 0
    while True:
        _reap()
        ready, _, _ = select.select([control], [], [], 1.0)
        if not ready:
            continue
        try:
            msg, fds, _, _ = socket.recv_fds(control, _MSG, 1)
        except OSError:
            return 0
        if not msg:
            return 0  # the server is gone (or closed us): runs in flight go on
        conns = [socket.socket(fileno=fd) for fd in fds]
        if not conns:
            continue
        try:
            pid = os.fork()
        except OSError as exc:
            with contextlib.suppress(OSError):
                conns[0].send(json.dumps({"error": f"fork: {exc}"}).encode())
            conns[0].close()
            continue
        if pid == 0:
            code = 0
            try:
                control.close()
                _shepherd(json.loads(msg), conns[0], zygote_death)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        conns[0].close()
        time.sleep(0)


if __name__ == "__main__":
    sys.exit(main())
