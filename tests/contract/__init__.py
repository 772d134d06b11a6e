"""Contract tests: one scenario, every backend (fake step, fake threaded, real uWSGI)."""
