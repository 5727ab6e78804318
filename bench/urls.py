"""The service's routes plus a bare DRF endpoint, the yardstick the trigger endpoint is held to."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from refresh_project.urls import urlpatterns as service_urlpatterns

BARE_PATH = "/bench/bare/"


class BareView(APIView):
    """Authenticates, parses the JSON body and answers: DRF's own cost, without a refresh's work."""

    def post(self, request):
        return Response({"status": "ok", "fields": len(request.data)})


urlpatterns = [path(BARE_PATH.strip("/") + "/", BareView.as_view()), *service_urlpatterns]
