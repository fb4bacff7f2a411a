"""Accounts: admins create users; every user may mint bearer tokens for themself."""

from __future__ import annotations

import falcon

from api.auth import Authenticator
from api.problems import Problem

ADMIN_ROLE = "admin"


class Users:
    """`/users`: create a user (admin only); an existing name is a conflict, never overwritten."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.context.body
        if self.auth.user_exists(body["name"]):
            raise Problem(409, "user-exists", f"a user named {body['name']!r} already exists")
        user = self.auth.create_user(body["name"], body["password"], body["role"])
        resp.media = {"name": user.name, "role": user.role}
        resp.status = falcon.HTTP_201


class Tokens:
    """`/tokens`: mint a bearer token for yourself, or (admin) for any user."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal = req.context.principal
        user = req.context.body.get("user", principal.name)
        if user != principal.name and principal.role != ADMIN_ROLE:
            raise Problem(403, "forbidden", "only an admin may mint a token for another user")
        if not self.auth.user_exists(user):
            raise Problem(422, "invalid-request", f"user: no user is named {user!r}",
                          errors=[{"field": "user", "rule": "must name an existing user"}])
        label = req.context.body.get("label")
        resp.media = {"token": self.auth.create_token(user, label), "user": user, "label": label}
        resp.status = falcon.HTTP_201
        resp.cache_control = ["no-store"]
