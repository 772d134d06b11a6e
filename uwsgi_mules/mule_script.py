"""Script form of the programmed-mule entry point, for ``lazy-apps``.

uWSGI 2.0 crashes a ``--mule=package.module:callable`` mule when
``lazy-apps`` is on; the script form works. Use
``--mule=<path of this file>`` (``uwsgi_mules.mule.script_path()`` gives it;
the config generator renders it for you).
"""

if __name__ == "__main__":
    from uwsgi_mules.mule import run

    run()
