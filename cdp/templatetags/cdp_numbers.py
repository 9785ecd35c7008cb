"""{% load cdp_numbers %}: {{ amount|money }} → ¥24,934.00, {{ count|grouped }} → 12,717."""
from django import template

from cdp import money as _money

register = template.Library()


@register.filter
def money(value):
    return _money.money(value)


@register.filter
def grouped(value):
    return _money.grouped(value)
