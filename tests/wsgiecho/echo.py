"""A WSGI upstream for jwtgate's header tests, run under gunicorn.

It answers every request with JSON: {"wsgi": true, "path": PATH_INFO,
"environ": {every HTTP_* key: its value}}. gunicorn turns a header name into
its environ key by upper-casing it and replacing '-' with '_', so X-Real-IP
and X_Real_IP both become HTTP_X_REAL_IP (joined with ',' when both come):
exactly what an attacker relies on.
"""
import json


def app(environ, start_response):
    body = json.dumps({
        "wsgi": True,
        "path": environ.get("PATH_INFO", ""),
        "environ": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
