from __future__ import annotations

from django.contrib import admin

from accounts.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "scope", "created", "last_used_at", "revoked_at"]
    list_filter = ["scope"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["uuid", "user", "prefix", "created", "last_used_at", "revoked_at"]
    fields = ["name", "scope", *readonly_fields]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        # A key exists only at creation and must reach its owner: the settings page does that.
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:
        for token in queryset.active():
            token.revoke()
