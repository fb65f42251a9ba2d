"""The prober (I/O, DESIGN.md 3): DNS transport, the recursive resolver, discovery, verification,
assembling observations from answers, and the worker processes that share the work among cores.
Every failure of a server becomes a finding (watchdog.engine.codes), never an exception.
"""
