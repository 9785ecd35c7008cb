"""sensors protocol face (being written)."""
urlpatterns = []
