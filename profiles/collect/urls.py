from . import segment, sensors

app_name = "collect"
urlpatterns = [*segment.urlpatterns, *sensors.urlpatterns]
