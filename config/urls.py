from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from config.ops import healthz

admin.site.site_header = "Scholion curation"
admin.site.site_title = "Scholion"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", RedirectView.as_view(pattern_name="archive:source_list"), name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("", include("archive.urls")),
    path("", include("annotations.urls")),
    path("", include("search.urls")),
    path("", include("exports.urls")),
]
