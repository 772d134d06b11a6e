from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("mules/", include("uwsgi_mules.contrib.django.monitor.urls")),
]
