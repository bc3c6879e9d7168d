"""Dock panels: analysis (run a task), results (layers, tables) and export."""
