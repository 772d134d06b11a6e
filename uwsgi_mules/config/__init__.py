"""Config generation: a uWSGI section with mules and farms, rendered to INI.

>>> from uwsgi_mules.config import Section
>>> section = Section()
>>> section.workers.set_mules_params(mules=2, farms=[section.workers.mule_farm("busy", 2)])
>>> print(section.as_ini())  # doctest: +SKIP
"""

from .groups import MuleFarm
from .section import Section

__all__ = ["MuleFarm", "Section"]
