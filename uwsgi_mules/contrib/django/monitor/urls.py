"""``path("mules/", include("uwsgi_mules.contrib.django.monitor.urls"))``: the page
outside the admin (the same views and permissions; a logged-in staff user)."""

from django.urls import path

from . import views

app_name = "uwsgi_mules_monitor"

urlpatterns = [
    path("", views.page, name="page"),
    path("api/snapshot", views.snapshot, name="snapshot"),
    path("api/result", views.result, name="result"),
    path("api/dead/<str:action>", views.act, name="act"),
    path("metrics", views.metrics, name="metrics"),
    path("static/<str:name>", views.asset, name="static"),
]
