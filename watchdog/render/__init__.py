"""What people and programs read, rendered from reports: pure functions from data to text."""
