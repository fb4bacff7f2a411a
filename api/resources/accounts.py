"""Accounts: admins create users; every user may mint and revoke bearer tokens for themself."""

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
        user = self.auth.create_user(body["name"], body["password"], body["role"], replace=False)
        if user is None:
            raise Problem(409, "user-exists", f"a user named {body['name']!r} already exists")
        resp.media = {"name": user.name, "role": user.role}
        resp.status = falcon.HTTP_201


class Tokens:
    """`/tokens`: mint a bearer token for yourself, or (admin) for any user; optionally one that expires."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal, body = req.context.principal, req.context.body
        user = body.get("user", principal.name)
        if user != principal.name and principal.role != ADMIN_ROLE:
            raise Problem(403, "forbidden", "only an admin may mint a token for another user")
        issued = self.auth.create_token(user, body.get("label"), body.get("expires_in"))
        if issued is None:
            raise Problem(422, "user-not-found", f"user: no user is named {user!r}",
                          errors=[{"field": "user", "rule": "must name an existing user"}])
        resp.media = {"token": issued.token, "id": issued.id, "user": issued.user, "label": issued.label,
                      "expires_at": issued.expires_at}
        resp.status = falcon.HTTP_201
        resp.cache_control = ["no-store"]


class Token:
    """`/tokens/{token_id}`: revoke one of your tokens (an admin: anyone's); it is refused from the next request."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def on_delete(self, req: falcon.Request, resp: falcon.Response, token_id: str) -> None:
        principal = req.context.principal
        owner = None if principal.role == ADMIN_ROLE else principal.name
        # Only ids: a token itself never travels in a URL (they end up in logs).
        if token_id.startswith("tl_") or self.auth.revoke_token(token_id, owner) is None:
            raise Problem(404, "token-not-found", f"you have no token with the id {token_id!r}")
        resp.status = falcon.HTTP_204
