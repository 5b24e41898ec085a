"""Measurements: numerics (errors vs bounds), timing, environment and settings capture."""
