from django.urls import path

from archive import views

app_name = "archive"

urlpatterns = [
    path("sources/", views.source_list, name="source_list"),
    path("sources/new/", views.source_archive, name="source_archive"),
    path("sources/<uuid:uuid>/", views.source_detail, name="source_detail"),
    path(
        "sources/<uuid:uuid>/passages/<int:start>-<int:end>/",
        views.source_passage,
        name="passage",
    ),
    path("sources/<uuid:uuid>/original", views.source_original, name="source_original"),
    path("sources/<uuid:uuid>/edit/", views.source_edit, name="source_edit"),
    path("collections/", views.collection_list, name="collection_list"),
    path("collections/<slug:slug>/", views.collection_detail, name="collection_detail"),
]
