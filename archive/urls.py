from django.urls import path

from archive import views

app_name = "archive"

urlpatterns = [
    path("sources/", views.source_list, name="source_list"),
    path("sources/new/", views.source_archive, name="source_archive"),
    path("sources/<uuid:uuid>/original", views.source_original, name="source_original"),
    path("sources/<uuid:uuid>/edit/", views.source_edit, name="source_edit"),
    path("uploads/<uuid:job_uuid>/", views.upload_job, name="upload_job"),
    path("uploads/<uuid:job_uuid>/status", views.upload_job_status, name="upload_job_status"),
    path("uploads/<uuid:job_uuid>/retry", views.upload_job_retry, name="upload_job_retry"),
    path("collections/", views.collection_list, name="collection_list"),
    path("collections/new/", views.collection_create, name="collection_create"),
    path("captures/", views.capture_list, name="capture_list"),
    path("captures/status", views.capture_status, name="capture_status"),
    path("captures/<uuid:capture_uuid>/", views.capture_detail, name="capture"),
    path("captures/<uuid:capture_uuid>/retry", views.capture_retry, name="capture_retry"),
    path("captures/<uuid:capture_uuid>/wacz", views.capture_wacz, name="capture_wacz"),
    path(
        "captures/<uuid:capture_uuid>/screenshot.png",
        views.capture_screenshot,
        name="capture_screenshot",
    ),
]
