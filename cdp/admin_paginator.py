from django.conf import settings
from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """Counting must not cost more than listing on tables of millions of rows:

    * an unfiltered list shows PostgreSQL's row estimate instead of running COUNT(*);
    * a filtered list counts at most CDP_ADMIN_COUNT_CAP matches (`capped` is then True
      and the templates show "1,000+"): a partial-name search matching 30,000 customers
      needs refining, not a full scan to number the pages.
    """

    capped = False
    estimated = False  # the count is PostgreSQL's estimate, not an exact number

    @cached_property
    def count(self):
        queryset = self.object_list
        if not queryset.query.where:
            estimate = self._estimate(queryset.model)
            if estimate > settings.CDP_ADMIN_ESTIMATE_COUNT_ABOVE:
                self.estimated = True
                return estimate
            return super().count
        cap = settings.CDP_ADMIN_COUNT_CAP
        counted = queryset.order_by()[: cap + 1].count()
        if counted > cap:
            self.capped = True
            return cap
        return counted

    @staticmethod
    def _estimate(model) -> int:
        if connection.vendor != "postgresql":
            return -1
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
            row = cursor.fetchone()
        return row[0] if row else -1
