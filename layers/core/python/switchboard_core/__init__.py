"""Switchboard's shared library, shipped to every function as the core Lambda layer."""
