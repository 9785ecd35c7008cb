"""Coupon pools: codes uploaded as a file or generated (and topped up) here; how many are
free, assigned to a message and redeemed."""
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
from ..services.coupons import coupons_generate, coupons_upload
from .forms import CouponGenerateForm, CouponPoolAddForm, CouponUploadForm

UPLOAD = "campaigns.add_couponpool"


def upload_message(outcome) -> str:
    return gettext("%(added)s codes added; %(refused)s refused (%(duplicates)s duplicates, %(invalid)s not codes).") % {
        "added": f"{outcome.added:,}", "refused": f"{outcome.refused:,}", "duplicates": f"{outcome.duplicates:,}",
        "invalid": f"{outcome.invalid:,}"}


def generated_message(added: int) -> str:
    return gettext("%(added)s codes generated.") % {"added": f"{added:,}"}


def counts_text(pool) -> str:
    return gettext("%(free)s free, %(assigned)s assigned to messages (%(redeemed)s redeemed)") % {
        "free": f"{pool.n_free:,}", "assigned": f"{pool.n_assigned:,}", "redeemed": f"{pool.n_redeemed:,}"}


@admin.register(CouponPool)
class CouponPoolAdmin(admin.ModelAdmin):
    list_display = ("name", "source", "free", "assigned", "redeemed", "created_at")
    list_filter = ("source",)
    search_fields = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_free=Count("coupons", filter=Q(coupons__delivery__isnull=True)),
            n_assigned=Count("coupons", filter=Q(coupons__delivery__isnull=False)),
            n_redeemed=Count("coupons", filter=Q(coupons__redeemed_at__isnull=False)))

    @admin.display(description=_("free codes"), ordering="n_free")
    def free(self, obj):
        return f"{obj.n_free:,}"

    @admin.display(description=_("assigned codes"), ordering="n_assigned")
    def assigned(self, obj):
        return f"{obj.n_assigned:,}"

    @admin.display(description=_("redeemed codes"), ordering="n_redeemed")
    def redeemed(self, obj):
        return f"{obj.n_redeemed:,}"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = CouponPoolAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "source", "prefix", "code_length", "count"]
        if obj.source == CouponPool.Source.GENERATE:
            return ["name", "source", "prefix", "code_length", "counts"]
        return ["name", "source", "counts"]

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("source", "prefix", "code_length", "counts")

    @admin.display(description=_("codes"))
    def counts(self, obj):
        """The counts, and the way to more codes (its page checks the permission)."""
        if obj.source == CouponPool.Source.GENERATE:
            url, link_id = "admin:campaigns_couponpool_generate", "generate-codes"
            label = gettext("Generate more codes…")
        else:
            url, link_id, label = "admin:campaigns_couponpool_upload", "upload-codes", gettext("Upload codes…")
        return format_html('<span id="coupon-counts">{}</span> · <a href="{}" id="{}">{}</a>', counts_text(obj),
                           reverse(url, args=[obj.pk]), link_id, label)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change and obj.source == CouponPool.Source.GENERATE:
            # In the add view's transaction: a pool is created with its codes or not at all.
            obj.generated = coupons_generate(pool=obj, count=form.cleaned_data["count"])

    def response_add(self, request, obj, post_url_continue=None):
        """A new uploaded pool is empty: go on to upload its codes. A generated one has
        them: say how many."""
        if obj.source == CouponPool.Source.GENERATE:
            self.message_user(request, generated_message(getattr(obj, "generated", 0)), messages.SUCCESS)
            if "_addanother" not in request.POST:
                return HttpResponseRedirect(reverse("admin:campaigns_couponpool_change", args=[obj.pk]))
        elif request.user.has_perm(UPLOAD) and "_addanother" not in request.POST:
            return HttpResponseRedirect(reverse("admin:campaigns_couponpool_upload", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [path("<int:pool_id>/upload/", wrap(self.upload_view), name="campaigns_couponpool_upload"),
                path("<int:pool_id>/generate/", wrap(self.generate_view), name="campaigns_couponpool_generate"),
                *super().get_urls()]

    def _page(self, request, pool, form, *, form_id, submit_label, title):
        context = {**self.admin_site.each_context(request), "opts": CouponPool._meta, "form": form,
                   "form_id": form_id, "submit_label": submit_label, "back_label": pool.name,
                   "back_url": reverse("admin:campaigns_couponpool_change", args=[pool.pk]), "pool": pool,
                   "counts": counts_text(pool), "title": title}
        return TemplateResponse(request, "admin/campaigns/couponpool/codes.html", context)

    def upload_view(self, request, pool_id):
        """Marketers add codes to a pool (a pool's codes are only ever added to)."""
        if not request.user.has_perm(UPLOAD):
            raise PermissionDenied
        pool = get_object_or_404(self.get_queryset(request), pk=pool_id)
        if pool.source != CouponPool.Source.UPLOAD:
            self.message_user(request, gettext("The codes of this pool are generated, not uploaded."), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:campaigns_couponpool_change", args=[pool.pk]))
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
        return self._page(request, pool, form, form_id="coupon-upload", submit_label=gettext("Upload"),
                          title=gettext("Upload codes to “%(name)s”") % {"name": pool.name})

    def generate_view(self, request, pool_id):
        """Top up a generated pool: more codes of its prefix and length."""
        if not request.user.has_perm(UPLOAD):
            raise PermissionDenied
        pool = get_object_or_404(self.get_queryset(request), pk=pool_id)
        if pool.source != CouponPool.Source.GENERATE:
            self.message_user(request, gettext("The codes of this pool are uploaded, not generated."), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:campaigns_couponpool_change", args=[pool.pk]))
        form = CouponGenerateForm(request.POST or None, pool=pool, existing=pool.n_free + pool.n_assigned)
        if request.method == "POST" and form.is_valid():
            try:
                added = coupons_generate(pool=pool, count=form.cleaned_data["count"])
            except ValidationError as error:
                form.add_error("count", error)
            else:
                self.message_user(request, generated_message(added), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:campaigns_couponpool_change", args=[pool.pk]))
        return self._page(request, pool, form, form_id="coupon-generate", submit_label=gettext("Generate"),
                          title=gettext("Generate codes for “%(name)s”") % {"name": pool.name})
