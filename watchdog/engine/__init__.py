"""The pure core (DESIGN.md 3): RFC 1982 time, validator profiles (every per-profile rule),
signature timelines and deadlines, verdicts, the alert lifecycle, scheduling decisions and the
finding-code registry (``codes``). No clock, no I/O: ``now`` is always an argument, so every
rule here is tested with tables. Imports nothing outside ``watchdog.engine`` but ``errors``.
"""
