"""Configuration (pure, DESIGN.md 3): TOML -> typed, fully parsed values, every problem listed
in one ConfigError.
"""
