from django.urls import path

from notes import views

urlpatterns = [
    path("notes/", views.list_notes, name="list-notes"),
    path("notes/write", views.write, name="write-note"),
    path("notes/submit", views.submit, name="submit-note"),
    path("notes/<int:note_id>/words", views.words, name="count-words"),
    path("tasks/<str:task_id>", views.task_result, name="task-result"),
]
