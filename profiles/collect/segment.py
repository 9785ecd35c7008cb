"""segment protocol face (being written)."""
urlpatterns = []
