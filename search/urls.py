from django.urls import path

from search import views

app_name = "search"

urlpatterns = [
    path("search/", views.search_page, name="search"),
    path("search/tags/cooccurrence/", views.tag_cooccurrence_page, name="tag_cooccurrence"),
]
