from django.urls import path

from exports import views

app_name = "exports"

urlpatterns = [
    path("collections/<slug:slug>/export/", views.export_menu, name="menu"),
    path("collections/<slug:slug>/export/<str:fmt>", views.download, name="download"),
    path("collections/<slug:slug>/codebook.csv", views.codebook_csv, name="codebook_csv"),
    path(
        "collections/<slug:slug>/import/hypothesis",
        views.hypothesis_import,
        name="hypothesis_import",
    ),
    path(
        "collections/<slug:slug>/export/<str:fmt>/prepare",
        views.prepare_export,
        name="prepare",
    ),
    path("exports/<uuid:job_uuid>/", views.export_job, name="export_job"),
    path("exports/<uuid:job_uuid>/status", views.export_job_status, name="export_job_status"),
    path("exports/<uuid:job_uuid>/file", views.export_job_file, name="export_job_file"),
    path("import/", views.import_view, name="import"),
    path("import/<uuid:job_uuid>/", views.import_job, name="job"),
    path("import/<uuid:job_uuid>/status", views.import_job_status, name="job_status"),
    path("import/<uuid:job_uuid>/retry", views.import_job_retry, name="job_retry"),
]
