"""Django tasks used by the MulesBackend tests (found by autodiscovery of tasks.py)."""
