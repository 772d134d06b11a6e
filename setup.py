"""Build of the optional C speedups (everything else is in pyproject.toml).

``uwsgi_mules._speedups`` signs and opens envelopes in C; when it cannot be
compiled (no C compiler or Python headers) the install goes on and the same
operations run in Python (``uwsgi_mules.envelope``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "uwsgi_mules._speedups",
            sources=["uwsgi_mules/_speedups.c"],
            depends=["uwsgi_mules/_blake2b.h", "uwsgi_mules/_queue_writer.h"],
            optional=True,
        )
    ]
)
