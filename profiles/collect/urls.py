from . import demo_shop, segment, sensors

app_name = "collect"
urlpatterns = [*segment.urlpatterns, *sensors.urlpatterns, *demo_shop.urlpatterns]
