from django.urls import path

from annotations import api, views

app_name = "annotations"

urlpatterns = [
    path("api/annotations/", api.annotation_collection_view, name="api_list"),
    path("api/annotations/<uuid:uuid>", api.annotation_detail, name="api_detail"),
    path("api/tags/", api.tag_suggestions, name="api_tags"),
    path("api/preview/", api.note_preview, name="api_preview"),
    path("api/sources/", api.source_search, name="api_sources"),
    path("annotations/<uuid:uuid>/history/", views.history, name="history"),
    path("tags/", views.tag_list, name="tag_list"),
    # str, not slug: tags in any script ("Résistance", "日本") have slugs in that script.
    path("tags/<str:slug>/", views.tag_detail, name="tag_detail"),
]
