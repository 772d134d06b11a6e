"""Tests of uwsgi_mules.contrib.django and the example site (need Django)."""
