"""Alert delivery: webhook bodies (generic, Slack), HMAC signing, retry decisions (pure), and the
delivery lanes that send the persisted outbox.
"""
