"""The pure core (DESIGN.md 3): RFC 1982 time, validator profiles, signature timelines and
deadlines, verdicts, the alert lifecycle and scheduling decisions. No clock, no I/O: ``now`` is
always an argument, so every rule here is tested with tables.
"""
