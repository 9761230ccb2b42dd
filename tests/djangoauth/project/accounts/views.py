import base64
import json

from django.conf import settings
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from rest_framework.generics import RetrieveAPIView

from .models import User
from .serializers import UserSerializer


class UserDetailView(RetrieveAPIView):
    """GET /auth/users/<pk>/: one's own record, or anyone's for staff; else 404."""

    serializer_class = UserSerializer

    def get_object(self):
        user = self.request.user
        pk = self.kwargs["pk"]
        if pk != user.pk and not user.is_staff:
            raise Http404
        return get_object_or_404(User, pk=pk)


class CurrentUserView(RetrieveAPIView):
    """GET /auth/user/: the caller's own record."""

    serializer_class = UserSerializer

    def get_object(self):
        return self.request.user


def _b64(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return base64.urlsafe_b64encode(n.to_bytes(size, "big")).rstrip(b"=").decode()


def _jwk():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = serialization.load_pem_public_key(settings.VERIFYING_KEY.encode())
    jwk = {"kid": settings.JWKS_KID, "alg": settings.ALGORITHM, "use": "sig"}
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        jwk.update(kty="RSA", n=_b64(numbers.n), e=_b64(numbers.e))
    elif isinstance(key, ec.EllipticCurvePublicKey):
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[
            key.curve.name
        ]
        size = (key.curve.key_size + 7) // 8
        numbers = key.public_numbers()
        jwk.update(kty="EC", crv=crv, x=_b64(numbers.x, size), y=_b64(numbers.y, size))
    else:
        raise ValueError(f"unsupported verifying key type {type(key).__name__}")
    return jwk


# Compact like DRF's JSONRenderer, so every body has one shape.
_COMPACT = {"separators": (",", ":")}
_JWKS = None


@require_GET
def jwks(request):
    """GET /.well-known/jwks.json: the verifying key, when it is asymmetric."""
    global _JWKS
    if not settings.ASYMMETRIC:
        return JsonResponse({"detail": "Not found."}, status=404, json_dumps_params=_COMPACT)
    if _JWKS is None:
        _JWKS = {"keys": [_jwk()]}
    return JsonResponse(_JWKS, json_dumps_params=_COMPACT)


@csrf_exempt
@require_POST
def password_change(request):
    """POST /auth/password-change/ {email, password, new_password} (django-easyjwt's shape)."""
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"detail": "JSON parse error."}, status=400, json_dumps_params=_COMPACT)
    if not isinstance(data, dict):
        data = {}
    missing = {k: ["This field is required."] for k in ("email", "password", "new_password") if not data.get(k)}
    if missing:
        return JsonResponse(missing, status=400, json_dumps_params=_COMPACT)
    user = User.objects.filter(email=data["email"]).first()
    if user is None or not user.is_active or not user.check_password(data["password"]):
        return JsonResponse(
            {"detail": "No active account found with the given credentials"}, status=401, json_dumps_params=_COMPACT
        )
    user.set_password(data["new_password"])
    user.save(update_fields=["password"])
    return JsonResponse({"detail": "Password changed."}, json_dumps_params=_COMPACT)
