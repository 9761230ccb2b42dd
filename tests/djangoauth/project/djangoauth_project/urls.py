"""URL map of the djangoauth test service; paths match simplejwt-wire.md."""
from django.urls import path
from rest_framework_simplejwt.views import (
    TokenBlacklistView,
    TokenObtainPairView,
    TokenRefreshView,
    TokenVerifyView,
)

from accounts.views import CurrentUserView, UserDetailView, jwks, password_change

urlpatterns = [
    path("auth/token/", TokenObtainPairView.as_view()),
    path("auth/token/refresh/", TokenRefreshView.as_view()),
    path("auth/token/verify/", TokenVerifyView.as_view()),
    path("auth/token/blacklist/", TokenBlacklistView.as_view()),
    path("auth/users/<int:pk>/", UserDetailView.as_view()),
    path("auth/user/", CurrentUserView.as_view()),
    path(".well-known/jwks.json", jwks),
    path("auth/password-change/", password_change),
]
