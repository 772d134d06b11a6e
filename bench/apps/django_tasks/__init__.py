"""A Django 6 project for bench/django_tasks_bench.py: one ``@task`` and one
``@offload`` function with the same arguments, and a view that times them."""
