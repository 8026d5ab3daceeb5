"""`--executor dask`: submit each run to an existing Dask cluster.

The run directories must be on storage its workers share.
"""

from __future__ import annotations

import importlib.util
import re
import socket
import uuid
from pathlib import Path
from typing import Any, ClassVar

from bbbrun.errors import ConfigError
from bbbrun.reprs import short_repr
from bbbrun.sweeps.executors.base import Executor, OnDone, RunJob, execute_run, result_of

ADDRESS = re.compile(r"^(?:(tcp|tls)://)?([A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\]):([0-9]{1,5})$")
CONNECT_SECONDS = 5.0


def parse_address(address: str) -> tuple[str, int]:
    """(host, port) of `tcp://HOST:PORT` (or tls://, or HOST:PORT alone), or one ConfigError line."""
    match = ADDRESS.match(address.strip())
    port = int(match.group(3)) if match else 0
    if match is None or not 0 < port < 65536:
        raise ConfigError(f"--scheduler {short_repr(address)} is not a Dask scheduler address; write "
                          "tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786")
    return match.group(2).strip("[]"), port


def check_reachable(host: str, port: int) -> None:
    """Fail before a sweep directory exists when nothing listens at the scheduler's address."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_SECONDS):
            pass
    except OSError as err:
        raise ConfigError(f"could not reach the dask scheduler at {host}:{port} ({err.strerror or err}); "
                          "start it (dask scheduler) or check --scheduler") from None


class DaskExecutor(Executor):
    # A Dask worker's threads share sys.stdout, so run output stays where the worker put it.
    captures_output: ClassVar[bool] = False
    client: Any = None

    def check(self) -> None:
        if importlib.util.find_spec("distributed") is None:
            raise ConfigError("--executor dask needs Dask: pip install 'bbbrun[dask]'")
        if not self.options.scheduler:
            raise ConfigError("--executor dask needs --scheduler tcp://HOST:PORT of a running dask scheduler")
        # Checked and connected here, so a bad or unreachable scheduler is refused before the sweep directory is made.
        check_reachable(*parse_address(self.options.scheduler))
        self.client = connect(self.options.scheduler)

    def run(self, jobs: list[RunJob], on_done: OnDone, folder: Path) -> None:
        from distributed import as_completed

        client = self.client or connect(str(self.options.scheduler))
        self.client = None
        tag = uuid.uuid4().hex[:8]
        with client:
            futures = {
                client.submit(execute_run, job, key=f"bbbrun-{tag}-{job.index:03d}", pure=False): job.index
                for job in jobs
            }
            for future in as_completed(futures):
                on_done(result_of(future, futures[future]))


def connect(scheduler: str) -> Any:
    from distributed import Client

    probe(scheduler)
    try:
        return Client(scheduler, timeout="10s")
    except OSError as err:
        raise ConfigError(f"could not reach the dask scheduler at {scheduler}: {err}") from None


def probe(scheduler: str) -> None:
    """Refuse a tcp:// address nothing listens on at once; the client would retry it for its whole timeout."""
    from distributed.comm import parse_address, parse_host_port

    scheme, location = parse_address(scheduler)
    if scheme != "tcp":
        return
    try:
        socket.create_connection(parse_host_port(location), timeout=10).close()
    except OSError as err:
        raise ConfigError(f"could not reach the dask scheduler at {scheduler}: {err.strerror or err}") from None
