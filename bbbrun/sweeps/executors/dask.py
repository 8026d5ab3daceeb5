"""`--executor dask`: submit each run to an existing Dask cluster.

The run directories must be on storage its workers share.
"""

from __future__ import annotations

import importlib.util
import socket
import uuid
from pathlib import Path
from typing import Any, ClassVar

from bbbrun.errors import ConfigError
from bbbrun.sweeps.executors.base import Executor, OnDone, RunJob, execute_run, result_of


class DaskExecutor(Executor):
    # A Dask worker's threads share sys.stdout, so run output stays where the worker put it.
    captures_output: ClassVar[bool] = False
    client: Any = None

    def check(self) -> None:
        if importlib.util.find_spec("distributed") is None:
            raise ConfigError("--executor dask needs Dask: pip install 'bbbrun[dask]'")
        if not self.options.scheduler:
            raise ConfigError("--executor dask needs --scheduler tcp://HOST:PORT of a running dask scheduler")
        # Connected here, so an unreachable scheduler is refused before the sweep directory is made.
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
