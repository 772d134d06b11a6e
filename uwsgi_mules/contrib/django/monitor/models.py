"""The unmanaged model behind the admin's "Mules" section: no table, only permissions."""

from django.db import models

#: the permission that allows re-sending and deleting dead tasks
ACT_PERMISSION = "uwsgi_mules_monitor.act_on_mules"
VIEW_PERMISSION = "uwsgi_mules_monitor.view_mules"


class Mules(models.Model):
    class Meta:
        managed = False
        verbose_name = "mules"
        verbose_name_plural = "mules"
        default_permissions = ("view",)
        permissions = [("act_on_mules", "Can re-send and delete dead tasks")]
