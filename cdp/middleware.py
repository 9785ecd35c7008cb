from django.conf import settings
from django.http import HttpResponseBadRequest
from django.middleware.locale import LocaleMiddleware
from django.utils import translation
from django.utils.translation import gettext


class ChineseFirstLocaleMiddleware(LocaleMiddleware):
    """Simplified Chinese unless the staff member chose another language.

    Django's LocaleMiddleware also follows the browser's Accept-Language header, which
    would show English to a Shanghai marketer whose laptop is set to English. Here only the
    explicit choice (the language cookie set by the admin's switch) counts.
    """

    def process_request(self, request):
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        supported = dict(settings.LANGUAGES)
        language = chosen if chosen in supported else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()


class RefuseNulInAddressMiddleware:
    """A NUL byte (%00) in the address is a 400 with a message, outside the partner API
    (which answers it in its own JSON shape, cdp.api.middleware). PostgreSQL refuses text
    holding NUL, so a filter or search carrying one would otherwise end in a server error.
    After the locale middleware: the message is in the staff member's language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith("/api/") and _holds_nul(request):
            return HttpResponseBadRequest(gettext("The URL may not contain the NUL character (%00)."),
                                          content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def _holds_nul(request) -> bool:
    if "\x00" in request.path_info:
        return True
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists())
