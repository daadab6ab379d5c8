"""Back-office users: accounts, roles per programme, sessions, sign-in throttling and
password resets."""
