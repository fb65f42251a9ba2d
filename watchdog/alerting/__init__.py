"""Alert delivery (DESIGN.md 3 and 4): webhook bodies (generic, Slack) and HMAC signing (pure),
retry decisions (pure), and the delivery lanes that send the persisted outbox.
"""
