from django.urls import path

from notes import views

urlpatterns = [
    path("notes/", views.list_notes, name="list-notes"),
    path("notes/write", views.write, name="write-note"),
    path("notes/submit", views.submit, name="submit-note"),
]
