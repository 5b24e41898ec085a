"""Rendering: pure functions of a results dict (HTML here; PDF, Markdown and comparisons beside it)."""
