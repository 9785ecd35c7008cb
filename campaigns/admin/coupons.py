"""Coupon pools: codes uploaded as a file, used and free counts."""
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..models import CouponPool
from ..services.coupons import coupons_upload
from .forms import CouponUploadForm

UPLOAD = "campaigns.add_couponpool"


def upload_message(outcome) -> str:
    return gettext("%(added)s codes added; %(refused)s refused (%(duplicates)s duplicates, %(invalid)s not codes).") % {
        "added": f"{outcome.added:,}", "refused": f"{outcome.refused:,}", "duplicates": f"{outcome.duplicates:,}",
        "invalid": f"{outcome.invalid:,}"}


@admin.register(CouponPool)
class CouponPoolAdmin(admin.ModelAdmin):
    list_display = ("name", "free", "used", "created_at")
    search_fields = ("name",)
    readonly_fields = ("counts",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_free=Count("coupons", filter=Q(coupons__delivery__isnull=True)),
            n_used=Count("coupons", filter=Q(coupons__delivery__isnull=False)))

    @admin.display(description=_("free codes"), ordering="n_free")
    def free(self, obj):
        return f"{obj.n_free:,}"

    @admin.display(description=_("used codes"), ordering="n_used")
    def used(self, obj):
        return f"{obj.n_used:,}"

    def get_fields(self, request, obj=None):
        return ["name"] if obj is None else ["name", "counts"]

    @admin.display(description=_("codes"))
    def counts(self, obj):
        link = ""
        if self._can_upload(obj):
            link = format_html(' · <a href="{}" id="upload-codes">{}</a>',
                               reverse("admin:campaigns_couponpool_upload", args=[obj.pk]), gettext("Upload codes…"))
        return format_html("{}{}", gettext("%(free)s free, %(used)s used") % {
            "free": f"{obj.n_free:,}", "used": f"{obj.n_used:,}"}, link)

    def _can_upload(self, obj):
        return obj is not None and obj.pk is not None

    def response_add(self, request, obj, post_url_continue=None):
        """A new pool is empty: go on to upload its codes."""
        if request.user.has_perm(UPLOAD) and "_addanother" not in request.POST:
            return HttpResponseRedirect(reverse("admin:campaigns_couponpool_upload", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    def get_urls(self):
        return [path("<int:pool_id>/upload/", self.admin_site.admin_view(self.upload_view),
                     name="campaigns_couponpool_upload"), *super().get_urls()]

    def upload_view(self, request, pool_id):
        """Marketers add codes to a pool (a pool's codes are only ever added to)."""
        if not request.user.has_perm(UPLOAD):
            raise PermissionDenied
        pool = get_object_or_404(self.get_queryset(request), pk=pool_id)
        form = CouponUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                outcome = coupons_upload(pool=pool, raw=form.cleaned_data["file"].read())
            except ValidationError as error:
                form.add_error("file", error)
            else:
                self.message_user(request, upload_message(outcome),
                                  messages.SUCCESS if outcome.added else messages.WARNING)
                return HttpResponseRedirect(reverse("admin:campaigns_couponpool_upload", args=[pool.pk]))
        context = {**self.admin_site.each_context(request), "opts": CouponPool._meta, "form": form,
                   "form_id": "coupon-upload", "submit_label": gettext("Upload"), "back_label": pool.name,
                   "back_url": reverse("admin:campaigns_couponpool_change", args=[pool.pk]), "pool": pool,
                   "title": gettext("Upload codes to “%(name)s”") % {"name": pool.name}}
        return TemplateResponse(request, "admin/campaigns/couponpool/upload.html", context)
