"""Next-best-product recommendations: per customer, the products to offer next (or the
product categories, where the customer's events name no product).

Written set-based by `profiles.services.recommendations` (nightly for everyone, on demand
for one customer); read by the profile page, the campaign token and the partner API."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .profiles import Profile


class RecommendationReason(models.TextChoices):
    VIEWED = "viewed", _("viewed")
    CARTED = "carted", _("added to cart")
    BOUGHT = "bought", _("bought")
    INTEREST = "interest", _("interest")


class CategorySimilarity(models.Model):
    """Item-to-item similarity of two categories: how often the same customers showed interest
    in both (cosine of their customer sets). Small: categories × categories. A category's
    row with itself holds its popularity (how many customers engaged with it)."""

    source = models.CharField(_("category"), max_length=100)
    target = models.CharField(_("similar category"), max_length=100)
    score = models.FloatField(_("similarity"))
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("category similarity")
        verbose_name_plural = _("category similarities")
        constraints = [models.UniqueConstraint(fields=["source", "target"], name="category_similarity_unique")]


class ProductSimilarity(models.Model):
    """Item-to-item similarity of two products (the `product_id` event property): the cosine
    of the sets of customers who viewed, carted or ordered each. Only each product's closest
    neighbours are kept. A product's row with itself holds its popularity (how many
    customers engaged with it)."""

    source = models.CharField(_("product"), max_length=100)
    target = models.CharField(_("similar product"), max_length=100)
    target_category = models.CharField(_("category of the similar product"), max_length=100, blank=True)
    score = models.FloatField(_("similarity"))
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("product similarity")
        verbose_name_plural = _("product similarities")
        constraints = [models.UniqueConstraint(fields=["source", "target"], name="product_similarity_unique")]


class Recommendation(models.Model):
    """One recommended product (or, without product ids, category) of a customer at a rank
    (1 = best), with why: the reason code and the product or category behind it, rendered
    in the reader's language."""

    # No database constraint (see ProfileTag): written by the million in one statement;
    # deleting a customer cascades through the ORM.
    profile = models.ForeignKey(
        Profile, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="recommendations",
        db_index=False, db_constraint=False,
    )
    rank = models.PositiveSmallIntegerField(_("rank"))
    category = models.CharField(_("category"), max_length=100, blank=True)
    product_id = models.CharField(_("product"), max_length=100, blank=True)
    score = models.FloatField(_("score"))
    reason_code = models.CharField(_("reason"), max_length=16, choices=RecommendationReason.choices)
    reason_category = models.CharField(_("because of"), max_length=100, blank=True)
    reason_product = models.CharField(_("because of product"), max_length=100, blank=True)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("recommendation")
        verbose_name_plural = _("recommendations")
        ordering = ["profile", "rank"]
        constraints = [models.UniqueConstraint(fields=["profile", "rank"], name="recommendation_profile_rank_unique")]

    def __str__(self):
        return f"{self.profile_id} #{self.rank} {self.product_id or self.category}"
