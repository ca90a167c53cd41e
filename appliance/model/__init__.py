"""Data types: frozen dataclasses and enums that every layer shares. Imports nothing else of the package."""
