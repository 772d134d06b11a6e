"""Django's own test files are not collected from here: they run against
MulesBackend through tests/django/test_django_upstream_tasks.py."""

collect_ignore_glob = ["django6*"]
