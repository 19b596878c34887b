"""``python -m nslib``: see :mod:`nslib.cli`."""

import logging
import sys

from .cli import main


def _drop_dead_kernel_tasks(record: logging.LogRecord) -> bool:
    """asyncio logs "Task exception was never retrieved" when nbclient's cell task, whose kernel died (an interrupt
    kills it), is garbage-collected; when that happens after the run's stderr is restored depends on the load. The
    runner reports every dead kernel itself, in one line, so this traceback is only noise."""
    exc = record.exc_info[1] if record.exc_info else None
    return type(exc).__name__ != "DeadKernelError"


if __name__ == "__main__":
    logging.getLogger("asyncio").addFilter(_drop_dead_kernel_tasks)
    sys.exit(main())
