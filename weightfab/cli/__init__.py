"""Command-line interface: parses options and calls the library."""
from .main import main

__all__ = ["main"]
