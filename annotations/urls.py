from django.urls import path

from annotations import api, views

app_name = "annotations"

urlpatterns = [
    path("sources/<uuid:uuid>/", views.source_detail, name="source_detail"),
    path(
        "sources/<uuid:uuid>/passages/<int:start>-<int:end>/",
        views.source_passage,
        name="passage",
    ),
    path("api/annotations/", api.annotation_collection_view, name="api_list"),
    path("api/annotations/<uuid:uuid>", api.annotation_detail, name="api_detail"),
    path("api/annotations/<uuid:uuid>/restore", api.annotation_restore, name="api_restore"),
    path("api/tags/", api.tag_suggestions, name="api_tags"),
    path("api/preview/", api.note_preview, name="api_preview"),
    path("api/sources/", api.sources, name="api_sources"),
    path("api/captures/<uuid:uuid>", api.capture_detail, name="api_capture"),
    path("annotations/<uuid:uuid>/history/", views.history, name="history"),
]
