from django.urls import path

from search import views

app_name = "search"

urlpatterns = [
    path("search/", views.search_page, name="search"),
    path("search/tags/cooccurrence/", views.tag_cooccurrence_page, name="tag_cooccurrence"),
    path("collections/<slug:slug>/", views.collection_detail, name="collection_detail"),
    path("tags/", views.tag_list, name="tag_list"),
    # str, not slug: tags in any script ("Résistance", "日本") have slugs in that script.
    path("tags/<str:slug>/", views.tag_detail, name="tag_detail"),
    path("me/annotations/", views.my_annotations, name="my_annotations"),
]
