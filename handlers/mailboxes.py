"""/auth/verify-email and /auth/email: proving a mailbox, and moving the account to another
(services/accounts/mailboxes.py)."""

from handlers.base import BaseHandler


class VerifyEmailHandler(BaseHandler):
    async def post(self) -> None:
        message = await self.services.mailboxes.request_verification(self.principal, self.client_address())
        self.write_json({"message": message}, status=202)


class VerifyEmailConfirmHandler(BaseHandler):
    requires_auth = False

    async def post(self) -> None:
        self.write_json({"user": await self.services.mailboxes.confirm_verification(self.json_body())})


class EmailChangeHandler(BaseHandler):
    async def post(self) -> None:
        message = await self.services.mailboxes.request_change(self.principal, self.json_body(),
                                                               self.client_address())
        self.write_json({"message": message}, status=202)


class EmailChangeConfirmHandler(BaseHandler):
    requires_auth = False

    async def post(self) -> None:
        self.write_json({"user": await self.services.mailboxes.confirm_change(self.json_body())})
