from rest_framework import serializers
from rest_framework_simplejwt import serializers as jwt_serializers

from .models import User
from .tokens import RefreshToken


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "username",
            "first_name",
            "last_name",
            "date_joined",
            "last_login",
            "is_active",
            "is_staff",
            "is_superuser",
            "services",
        ]
        read_only_fields = fields


# The token serializers differ from SimpleJWT's only in signing through
# accounts.tokens, so issued tokens can carry a kid.
class TokenObtainPairSerializer(jwt_serializers.TokenObtainPairSerializer):
    token_class = RefreshToken


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    token_class = RefreshToken


class TokenBlacklistSerializer(jwt_serializers.TokenBlacklistSerializer):
    token_class = RefreshToken
