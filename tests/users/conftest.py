from tests.users.mailbox import cheap_password_hashes, smtp

__all__ = ["cheap_password_hashes", "smtp"]
