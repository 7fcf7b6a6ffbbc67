app_name = "cds"

urlpatterns: list = []
