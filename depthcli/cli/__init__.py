"""Typer command-line layer: parse, validate, call the Python API, report. No science lives here."""
