from django.urls import path

from . import views

urlpatterns = [
    path("whoami/", views.whoami),
    path("upload/", views.upload),
    path("stream/", views.stream),
    path("die/", views.die),
    path("env/", views.env),
]
