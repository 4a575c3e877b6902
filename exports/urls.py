from django.urls import path

from exports import views

app_name = "exports"

urlpatterns = [
    path("collections/<slug:slug>/export/", views.export_menu, name="menu"),
    path("collections/<slug:slug>/export/<str:fmt>", views.download, name="download"),
    path("import/", views.import_view, name="import"),
]
