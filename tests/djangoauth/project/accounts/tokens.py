"""Token classes that put a `kid` in the JWT header.

SimpleJWT 5.2.2's TokenBackend.encode calls jwt.encode without headers, so it
cannot emit a kid. These subclasses sign through a backend that adds one when
DJANGOAUTH_KID is set; decoding is unchanged (the stock backend checks the
same key, algorithm, issuer and audience).
"""
import jwt
from django.conf import settings
from rest_framework_simplejwt import tokens
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.settings import api_settings


class KidTokenBackend(TokenBackend):
    def __init__(self, *args, kid=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kid = kid

    def encode(self, payload):
        if self.kid is None:
            return super().encode(payload)
        jwt_payload = payload.copy()
        if self.audience is not None:
            jwt_payload["aud"] = self.audience
        if self.issuer is not None:
            jwt_payload["iss"] = self.issuer
        return jwt.encode(
            jwt_payload,
            self.signing_key,
            algorithm=self.algorithm,
            headers={"kid": self.kid},
            json_encoder=self.json_encoder,
        )


token_backend = KidTokenBackend(
    api_settings.ALGORITHM,
    api_settings.SIGNING_KEY,
    api_settings.VERIFYING_KEY,
    api_settings.AUDIENCE,
    api_settings.ISSUER,
    api_settings.JWK_URL,
    api_settings.LEEWAY,
    api_settings.JSON_ENCODER,
    kid=settings.TOKEN_KID,
)


class KidMixin:
    @property
    def token_backend(self):
        return token_backend


class AccessToken(KidMixin, tokens.AccessToken):
    pass


class RefreshToken(KidMixin, tokens.RefreshToken):
    access_token_class = AccessToken
