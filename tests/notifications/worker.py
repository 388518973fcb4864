"""A dispatcher in a process of its own, for the crash test to SIGKILL mid-batch.

``python -m tests.notifications.worker DB_URL ROUTING_FILE AS_OF READY_FILE``: builds the
dispatcher (the slow imports), touches READY_FILE, then dispatches until nothing is due.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from models.db import make_engine
from notifications import routing, templates
from notifications.dispatch import DispatchConfig, Dispatcher

CONFIG = DispatchConfig(batch_size=20, concurrency=4, lease_s=30.0, timeout_s=5.0,
                        digest_time=None, run_budget_s=None)


def main(argv: list[str]) -> int:
    url, routing_file, as_of, ready = argv
    engine = make_engine(url)
    tset = templates.load()
    dispatcher = Dispatcher(engine, routing.load(Path(routing_file), known_templates=tset.names()),
                            tset, CONFIG, owner="victim")
    from notifications import channels

    channels._schemes()  # load Apprise's plugins before saying ready
    Path(ready).touch()
    dispatcher.run(datetime.fromisoformat(as_of))
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
