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
    path("collections/<slug:slug>/codebook/", views.codebook, name="codebook"),
    path("collections/<slug:slug>/codebook/add", views.code_add, name="code_add"),
    # str, not slug: tags in any script have slugs in that script (as search's tag pages).
    path("collections/<slug:slug>/codebook/<str:tag>/edit", views.code_edit, name="code_edit"),
    path(
        "collections/<slug:slug>/codebook/<str:tag>/rename", views.code_rename, name="code_rename"
    ),
    path("collections/<slug:slug>/codebook/<str:tag>/merge", views.code_merge, name="code_merge"),
    path(
        "collections/<slug:slug>/codebook/<str:tag>/delete", views.code_delete, name="code_delete"
    ),
    path("codebook-jobs/<uuid:job_uuid>/", views.codebook_job, name="codebook_job"),
    path(
        "codebook-jobs/<uuid:job_uuid>/status",
        views.codebook_job_status,
        name="codebook_job_status",
    ),
    path(
        "codebook-jobs/<uuid:job_uuid>/retry", views.codebook_job_retry, name="codebook_job_retry"
    ),
]
