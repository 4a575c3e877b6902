from django.urls import path

from archive import views

app_name = "archive"

urlpatterns = [
    path("sources/", views.source_list, name="source_list"),
    path("sources/new/", views.source_archive, name="source_archive"),
    path("sources/<uuid:uuid>/original", views.source_original, name="source_original"),
    path("sources/<uuid:uuid>/edit/", views.source_edit, name="source_edit"),
    path("collections/", views.collection_list, name="collection_list"),
]
