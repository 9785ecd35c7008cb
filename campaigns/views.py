"""What customers and vendors reach without logging in: tracked links, the unsubscribe
page and the receipt endpoint. No personal data travels in these URLs."""
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .destinations import ReceiptInput, ReceiptRefused, adapter_for, delivery_key
from .links import token_read
from .models import Delivery, Destination, Receipt
from .services.receipts import receipts_record


def _delivery(kind: str, token: str) -> Delivery:
    delivery_id = token_read(kind, token)
    delivery = Delivery.objects.filter(pk=delivery_id).select_related("variant", "campaign").first() \
        if delivery_id else None
    if delivery is None or delivery.status == Delivery.Status.HOLDOUT:
        raise Http404
    return delivery


@require_http_methods(["GET", "HEAD"])
def click(request, token):
    delivery = _delivery("r", token)
    target = delivery.variant.link_url if delivery.variant else ""
    if not target:
        raise Http404
    if request.method == "GET":
        receipts_record(destination=None, receipts=[ReceiptInput(delivery_key(delivery.pk), Receipt.Kind.CLICKED,
                                                                 timezone.now())])
    return HttpResponseRedirect(target)


@csrf_exempt  # the link in a message and mail clients' one-click unsubscribe (RFC 8058) post here
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    delivery = _delivery("u", token)
    done = request.method == "POST"
    if done:
        receipts_record(destination=None, receipts=[ReceiptInput(delivery_key(delivery.pk),
                                                                 Receipt.Kind.UNSUBSCRIBED, timezone.now())])
    return render(request, "campaigns/unsubscribe.html", {
        "done": done, "channel": delivery.get_channel_display(), "token": token})


@csrf_exempt  # vendors sign their receipts instead
@require_http_methods(["GET", "POST"])
def receipts(request, destination_id):
    destination = get_object_or_404(Destination, pk=destination_id)
    adapter = adapter_for(destination)
    if request.method == "GET":  # a vendor checking the URL before it sends (WeChat's echostr)
        if not hasattr(adapter, "verify_url"):
            return HttpResponseNotAllowed(["POST"])
        try:
            return HttpResponse(adapter.verify_url(request), content_type="text/plain")
        except ReceiptRefused as error:
            return JsonResponse({"code": "receipt_refused", "message": str(error)}, status=400)
    try:
        items = adapter.parse_receipts(request)
    except ReceiptRefused as error:
        return JsonResponse({"code": "receipt_refused", "message": str(error)}, status=400)
    # "code": 0 is the acknowledgement Alibaba Cloud SMS's report push waits for (else it pushes again)
    return JsonResponse({"code": 0, "recorded": receipts_record(destination=destination, receipts=items)})
