"""Calls to Azure DevOps with an Entra access token, and what a refused token leads to.

A 401 from the PAT API is about the token, never a policy (policies come as a `patTokenError`
or a 403), so it never turns into "use the Entra token for git instead": that token is the
one just refused. Its headers say why, and each reason has its own remedy, tried once:

- they name another tenant: the organization has moved to another Entra tenant; sign in
  there (silently, where the account is a member or guest) and remember the new tenant;
- a claims challenge (Continuous Access Evaluation): a new token carrying those claims, from
  the refresh token while it still works;
- otherwise the token was revoked (sessions revoked, password changed): drop it and refresh.

When the refresh token is dead too, a person signs in where one can; where nobody can, the
one line names `git credential-pat login URL`. A token refused twice is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from git_credential_pat.actions.context import SIGNIN_LOCK, OrgContext, StoredTokenCache
from git_credential_pat.core import entries, policy
from git_credential_pat.core.errors import HelperError
from git_credential_pat.edges import trace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from git_credential_pat.core.entries import Item
    from git_credential_pat.edges.patapi import TokenRefused
    from git_credential_pat.edges.signin import AccessToken

T = TypeVar("T")


@dataclass(frozen=True)
class Signed:
    """The token a call went through with, and the tenant it was signed in to (for an
    organization backed by Microsoft accounts, "organizations", not the token's own)."""

    token: AccessToken
    tenant: str


def with_token(context: OrgContext, item: Item, account: str, call: Callable[[Signed], T],
               *, interactive: bool = True) -> tuple[T, Signed]:
    """`call` with a token for the organization; once more with a new one if the service
    refuses the first (`TokenRefused`), for the reason its answer gives."""
    from git_credential_pat.edges.patapi import TokenRefused
    from git_credential_pat.edges.tenant import claims_challenge

    tenant = context.tenant(item)
    signed = Signed(context.token(tenant, account, interactive), tenant)
    try:
        return call(signed), signed
    except TokenRefused as refused:
        moved = _moved_to(context, refused, signed)
        again = account or signed.token.account
        if moved:
            signed = Signed(context.token(moved, again, interactive), moved)
        else:
            claims = claims_challenge(refused.challenge)
            trace.log(f"the access token was refused{' with a claims challenge' if claims else ''};"
                      " getting a new one")
            signed = Signed(context.token(signed.tenant, again, interactive, claims=claims,
                                          refused=signed.token.token), signed.tenant)
    try:
        return call(signed), signed
    except TokenRefused as refused:
        _check_pinned(context, refused, signed)
        who = signed.token.account or "the account"
        raise HelperError(f"{refused}, even with a new sign-in; if {who} is not a member of it, "
                          "sign in as another: git credential-pat login --account ACCOUNT "
                          f"{context.org.url}") from None


def _named(context: OrgContext, refused: TokenRefused, signed: Signed) -> str:
    """The tenant a refusal names when it is neither the one signed in to nor the token's."""
    from git_credential_pat.edges.tenant import named_by

    named = named_by(refused.challenge, context.settings.authority_host)
    return "" if named in ("", signed.tenant.lower(), signed.token.tenant.lower()) else named


def _moved_to(context: OrgContext, refused: TokenRefused, signed: Signed) -> str:
    """The tenant the organization has moved to, when the refusal names another; it is
    remembered at once, for every later sign-in. "" when it has not moved, or when
    `patTenant` pins the tenant, which only a person changes (`_check_pinned`)."""
    named = "" if context.settings.tenant else _named(context, refused, signed)
    if named:
        trace.log(f"the organization {context.org.name} has moved from tenant {signed.tenant} "
                  f"to {named}")
        context.update_item(lambda fresh: entries.org_of(fresh).update(tenant=named))
    return named


def _check_pinned(context: OrgContext, refused: TokenRefused, signed: Signed) -> None:
    """A new token from the pinned tenant refused too, naming another: the pin is stale.
    (A cached token's tenant may be the pin's domain name, so only a fresh one tells.)"""
    named = _named(context, refused, signed)
    if context.settings.tenant and named:
        raise HelperError(f"the organization {context.org.name} signs in with the Entra tenant "
                          f"{named} now, not {context.settings.tenant}; change or unset "
                          f"credential.{context.org.url}.patTenant")


def forget_refused(context: OrgContext, token: str) -> None:
    """Drop an access token git saw refused from the sign-in cache, so the next `get` signs
    in afresh instead of handing it back. Skipped (the next refusal tries again) while
    another process holds the sign-in: git waits on an erase, which never waits for a person."""
    from git_credential_pat.edges import lock, signin

    if policy.provided_token(context.org, context.runtime.environ):
        return  # what `get` answers there is the CI system's token, which no cache holds
    try:
        with lock.held(SIGNIN_LOCK, timeout=0):
            signin.SignIn(context.settings, context.http, StoredTokenCache(context.store),
                          context.runtime, context.runtime.environ).forget(token)
    except HelperError as error:
        trace.log(f"not forgetting the refused access token now: {error}")
