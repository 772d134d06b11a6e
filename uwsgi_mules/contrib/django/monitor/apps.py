from django.apps import AppConfig


class MonitorConfig(AppConfig):
    name = "uwsgi_mules.contrib.django.monitor"
    label = "uwsgi_mules_monitor"
    verbose_name = "Mules"
    default_auto_field = "django.db.models.AutoField"
