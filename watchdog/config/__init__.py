"""Configuration: TOML -> typed, fully parsed values, every problem listed in one ConfigError."""
