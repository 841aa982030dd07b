"""Request bodies, validated with ``schema`` before anything reaches a query.

Every field is checked for its type first, so an operator object such as
``{"$ne": null}`` is a 400 and never a filter, and for text that MongoDB can store (JSON
may carry lone surrogates, which UTF-8 cannot encode), before any hashing. Values come back
normalised (trimmed names; emails in email-validator's normalised form, lower-cased).
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from schema import And, Optional, Schema, SchemaError, Use

from services.common.errors import InvalidInput

MAX_NAME_CHARS = 100
MAX_EMAIL_CHARS = 254  # RFC 5321 path limit
# A new password is 6 to 72 characters (Unicode code points, as the OpenAPI document's
# minLength and maxLength count them) and at most 72 bytes in UTF-8: bcrypt only looks at
# the first 72 bytes (and bcrypt 5 refuses more), so a longer one would be silently
# truncated; it is refused with a message that names the limit instead.
MIN_PASSWORD_CHARS = 6
MAX_PASSWORD_CHARS = 72
MAX_PASSWORD_BYTES = 72


def normalize_email(value: str) -> str | None:
    """The one stored form of an address, or None if it is not one: email-validator's
    normalised form (Unicode NFC, an internationalised domain in Unicode whether it came as
    Unicode or as punycode), lower-cased, so the same address written differently cannot
    make two accounts."""
    value = value.strip()
    if len(value) > MAX_EMAIL_CHARS:
        return None
    try:
        # Syntax only: no DNS lookup, which would block the event loop and leak timing.
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


class NewPassword:
    """A ``schema`` validator of a password being chosen, whose error names the limit it
    missed: too few characters, too many characters, or too many UTF-8 bytes."""

    def __init__(self, label: str):
        self._label = label  # "Password", "The new password"

    def validate(self, value: object, **_kwargs: object) -> str:
        label = self._label
        if not isinstance(value, str):
            raise SchemaError(None, f"{label} must be text.")
        if len(value) < MIN_PASSWORD_CHARS:
            raise SchemaError(None, f"{label} must be at least {MIN_PASSWORD_CHARS} characters long.")
        if len(value) > MAX_PASSWORD_CHARS:
            raise SchemaError(None, f"{label} must be at most {MAX_PASSWORD_CHARS} characters long.")
        if len(value.encode("utf-8")) > MAX_PASSWORD_BYTES:
            raise SchemaError(None, f"{label} must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8 (bcrypt's limit): "
                              "accented letters take 2 bytes and most emoji 4, so fewer of those fit.")
        return value


NAME: And[Schema] = And(
    str, Use(str.strip), lambda v: 0 < len(v) <= MAX_NAME_CHARS,  # type: ignore[arg-type]  # schema's types omit Use
    error=f"Name must be a non-empty text of at most {MAX_NAME_CHARS} characters.",
)
EMAIL: And[Schema] = And(
    str, Use(normalize_email), str,  # type: ignore[arg-type]  # schema's types omit Use
    error="Email must be a valid email address, such as name@example.com.",
)
class KnownPassword:
    """A ``schema`` validator of a password the account already has (login, confirming a
    change or a deletion): any text that could be one, 1 to 72 bytes, since accounts made
    before the character rule may have one of 6 bytes but fewer characters. A wrong one is a
    401, after the password check."""

    def __init__(self, label: str):
        self._label = label  # "Password", "Your current password"

    def validate(self, value: object, **_kwargs: object) -> str:
        label = self._label
        if not isinstance(value, str):
            raise SchemaError(None, f"{label} must be text.")
        if not value:
            raise SchemaError(None, f"{label} must not be empty.")
        if len(value.encode("utf-8")) > MAX_PASSWORD_BYTES:
            raise SchemaError(None, f"{label} must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8: "
                                    "no password is longer.")
        return value


PASSWORD = NewPassword("Password")

# What to say when a field is absent, by field name.
_MISSING = {
    "name": "Name is required.",
    "email": "Email is required.",
    "password": "Password is required.",
    "refresh_token": "refresh_token is required.",
    "current_password": "Your current password is required.",
    "new_password": "A new password is required.",
    "token": "The token is required.",
    "id_token": "id_token is required: the ID token the app got from the provider.",
    "new_email": "new_email is required: the address to move the account to.",
}

SIGNUP = Schema({"name": NAME, "email": EMAIL, "password": PASSWORD}, ignore_extra_keys=True)
LOGIN = Schema({"email": EMAIL, "password": KnownPassword("Password")}, ignore_extra_keys=True)

# Opaque tokens we issue are 43 characters; the bound keeps junk from being hashed
# (but lets a mistaken JWT through, to be told it is not a refresh token).
MAX_OPAQUE_TOKEN_CHARS = 1000
OPAQUE_TOKEN: And[Schema] = And(str, lambda v: 0 < len(v) <= MAX_OPAQUE_TOKEN_CHARS,
                   error="The token must be the text this service issued.")
LOGOUT_SCOPES = ("current", "others", "all")
REFRESH = Schema({"refresh_token": OPAQUE_TOKEN}, ignore_extra_keys=True)
LOGOUT = Schema({Optional("scope"): And(str, lambda v: v in LOGOUT_SCOPES,
                                        error="scope must be one of: current, others, all.")},
                ignore_extra_keys=True)
# A wrong current password is a 401, after the password check: any text that could be one.
CURRENT_PASSWORD = KnownPassword("Your current password")
NEW_PASSWORD = NewPassword("The new password")
PASSWORD_CHANGE = Schema({"current_password": CURRENT_PASSWORD, "new_password": NEW_PASSWORD},
                         ignore_extra_keys=True)
# An ID token from Google or Apple: a JWT of about 1000 characters; the bound
# keeps junk from being parsed. The nonce is the app's own random text.
MAX_ID_TOKEN_CHARS = 4096
MAX_NONCE_CHARS = 512
ID_TOKEN: And[Schema] = And(str, lambda v: 0 < len(v) <= MAX_ID_TOKEN_CHARS,
                             error="id_token must be the ID token the app got from the provider.")
NONCE: And[Schema] = And(
    str, lambda v: 0 < len(v) <= MAX_NONCE_CHARS,
    error=f"nonce must be the text the app sent to the provider (at most {MAX_NONCE_CHARS} characters).")
OAUTH_SIGN_IN = Schema({"id_token": ID_TOKEN, Optional("nonce"): NONCE}, ignore_extra_keys=True)
# Apple gives the app the person's name on the first sign-in only, never in the token. A
# blank one is as good as none: the account is named from the token or the address instead.
APPLE_NAME: And[Schema] = And(
    str, Use(str.strip), lambda v: len(v) <= MAX_NAME_CHARS,  # type: ignore[arg-type]  # schema's types omit Use
    error=f"name must be a text of at most {MAX_NAME_CHARS} characters.",
)
APPLE_SIGN_IN = Schema({"id_token": ID_TOKEN, Optional("nonce"): NONCE, Optional("name"): APPLE_NAME},
                       ignore_extra_keys=True)
# "It is really you": the password, or (an account that signs in with Google or Apple) a
# fresh ID token of one of its identities. Which one is present is checked by the caller.
CONFIRMATION = Schema({Optional("password"): KnownPassword("Your password"), Optional("id_token"): ID_TOKEN,
                       Optional("nonce"): NONCE}, ignore_extra_keys=True)
ACCOUNT_DELETION = CONFIRMATION
# What proves a logged-in caller is the account's owner (services/accounts/identity.py).
IDENTITY_PROOF = CONFIRMATION
EMAIL_CHANGE = Schema({"new_email": EMAIL, Optional("password"): CURRENT_PASSWORD, Optional("id_token"): ID_TOKEN,
                       Optional("nonce"): NONCE}, ignore_extra_keys=True)
MAIL_TOKEN = Schema({"token": OPAQUE_TOKEN}, ignore_extra_keys=True)
RESET_REQUEST = Schema({"email": EMAIL}, ignore_extra_keys=True)
RESET_CONFIRM = Schema({"token": OPAQUE_TOKEN, "new_password": NEW_PASSWORD}, ignore_extra_keys=True)


def validated(schema: Schema, body) -> dict:
    """Returns the normalised body, or raises InvalidInput with a readable message."""
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object.")
    # Text MongoDB cannot store (a lone surrogate) never gets this far: the JSON body
    # parser refuses it (handlers/body.py).
    for key in schema.schema:
        if isinstance(key, str) and key not in body:
            raise InvalidInput(_MISSING.get(key, f"{key} is required."))
    try:
        return schema.validate(body)
    except SchemaError as error:
        raise InvalidInput(error.code) from None
