"""`python tests/slow_results.py train ...`: bbbrun whose post-training results stage first sleeps a while.

The pause makes a signal sent after "evaluating the predictive" land in the
results stage for certain, however fast the machine.
"""

from __future__ import annotations

import time
from typing import Any

from bbbrun.entry import main
from bbbrun.runs import runner

PAUSE_S = 60.0
_write_results = runner.write_results


def slow_write_results(*args: Any) -> Any:
    time.sleep(PAUSE_S)
    return _write_results(*args)


if __name__ == "__main__":
    runner.write_results = slow_write_results
    main()
