"""Lambda functions, one package each (handler.py is the entry point)."""
