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
    path("import/", views.import_view, name="import"),
    path("import/<uuid:job_uuid>/", views.import_job, name="job"),
    path("import/<uuid:job_uuid>/status", views.import_job_status, name="job_status"),
    path("import/<uuid:job_uuid>/retry", views.import_job_retry, name="job_retry"),
]
