from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("accounts/register/", views.register, name="register"),
    path("collections/<slug:slug>/members/", views.members, name="members"),
    path("collections/<slug:slug>/members/add", views.member_add, name="member_add"),
    path(
        "collections/<slug:slug>/members/<str:username>/role",
        views.member_role,
        name="member_role",
    ),
    path(
        "collections/<slug:slug>/members/<str:username>/remove",
        views.member_remove,
        name="member_remove",
    ),
    path("collections/<slug:slug>/leave", views.collection_leave, name="collection_leave"),
    path(
        "collections/<slug:slug>/invitations/new",
        views.invitation_create,
        name="invitation_create",
    ),
    path(
        "collections/<slug:slug>/invitations/<uuid:uuid>/revoke",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("collections/<slug:slug>/transfer", views.collection_transfer, name="collection_transfer"),
    path("collections/<slug:slug>/archive", views.collection_archive, name="collection_archive"),
    path("collections/<slug:slug>/reopen", views.collection_reopen, name="collection_reopen"),
    path("collections/<slug:slug>/delete", views.collection_delete, name="collection_delete"),
    path("join/<str:key>/", views.join, name="join"),
    path("settings/tokens/", views.tokens, name="tokens"),
    path("settings/tokens/<uuid:uuid>/revoke", views.token_revoke, name="token_revoke"),
]
