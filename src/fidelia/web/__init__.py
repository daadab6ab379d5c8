"""The back-office at ``/admin``: server-rendered pages (Jinja2) over the same services as the
API, for the people who run a programme."""
