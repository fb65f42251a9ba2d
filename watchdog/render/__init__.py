"""What people and programs read (pure, DESIGN.md 3): the one-shot report as text, JSON and a
Nagios line (``check``), and the sentences every output shares (``sentences``).
"""
