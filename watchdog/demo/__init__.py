"""Demo helpers: an in-memory DNSSEC signer and a small authoritative server with faults.

Modules are imported explicitly (``watchdog.demo.signer``, ``watchdog.demo.authserver``) so
that ``python -m watchdog.demo.authserver`` runs without a double import.
"""
