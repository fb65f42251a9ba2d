"""The prober (I/O): DNS transport, the recursive resolver, discovery, verification, assembling
observations from answers, and the worker processes that share the work among cores.
"""
