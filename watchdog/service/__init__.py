"""The long-running service (I/O, DESIGN.md 3 and 4): the scheduler loop with its injected clock
(``loop``, ``clock``), the pure judging step (``judge``), the watched zones (``zones``), the
state store (``store``, ``sqlite_file``, ``records``), the webhook lanes (``notifications``),
systemd's notify protocol, the logging setup and the process entry points (``main``).
"""
