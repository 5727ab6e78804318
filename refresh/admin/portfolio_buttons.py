""" "Refresh portfolio now" for admin pages whose object names a portfolio owner (portfolios, users)."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from refresh.admin.buttons import allowed_modes, may_refresh_portfolio, start_refresh_from_admin
from refresh.models import RefreshKind, RefreshMode
from refresh.services import access


class PortfolioRefreshAdminMixin(admin.ModelAdmin):
    """Adds the button to the change page and the "Refresh selected portfolios" action.

    Listed before the admin it extends, whose own change form the button's template extends;
    ``refresh_owner_field`` names the attribute holding the portfolio owner's user id.
    """

    refresh_owner_field = "owner_id"
    change_form_template = "admin/refresh/portfolio_refresh_change_form.html"

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_refresh_portfolio"
        return [  # ours first: "<path:object_id>/" is greedy
            path(
                "<path:object_id>/refresh-portfolio/",
                self.admin_site.admin_view(require_POST(self.refresh_portfolio_view)),
                name=name,
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):  # noqa: FBT002, PLR0917 - Django's signature
        context["portfolio_refresh_base_template"] = super().change_form_template or "admin/change_form.html"
        if obj is not None and not add:
            target = getattr(obj, self.refresh_owner_field)
            if may_refresh_portfolio(request.user, target_user_id=target):
                context["portfolio_refresh"] = {
                    "url": reverse(
                        f"admin:{self.opts.app_label}_{self.opts.model_name}_refresh_portfolio", args=[obj.pk]
                    ),
                    "modes": allowed_modes(request.user),
                }
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def refresh_portfolio_view(self, request, object_id):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such object.")
        mode = request.POST.get("mode") or RefreshMode.INCREMENTAL
        start_refresh_from_admin(
            request, kind=RefreshKind.PORTFOLIO, mode=mode, target_user_id=getattr(obj, self.refresh_owner_field)
        )
        return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", obj.pk)

    def has_refresh_portfolio_permission(self, request):
        return access.has_capability(request.user, access.REFRESH_ANY_PORTFOLIO)

    @admin.action(description="Refresh selected portfolios", permissions=["refresh_portfolio"])
    def refresh_selected_portfolios(self, request, queryset):
        """One portfolio run per distinct owner: a portfolio refresh covers all of a user's portfolios."""
        owners = sorted(set(queryset.values_list(self.refresh_owner_field, flat=True)))
        started = [
            run
            for owner in owners
            if (
                run := start_refresh_from_admin(
                    request, kind=RefreshKind.PORTFOLIO, mode=RefreshMode.INCREMENTAL, target_user_id=owner
                )
            )
        ]
        if len(owners) > 1:
            messages.info(request, f"{len(started)} of {len(owners)} owners' portfolio refreshes requested.")
