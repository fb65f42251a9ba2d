"""The long-running service (I/O): the scheduler loop, the state store, systemd's notify protocol
and the logging setup.
"""
