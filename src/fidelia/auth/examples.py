"""Examples of the API key documents (see ``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import ADMIN_KEY_ID, POS_KEY_ID, JsonObject

CREATE: JsonObject = {"name": "Lyon Part-Dieu tills", "scope": "integration"}

KEY: JsonObject = {
    "id": POS_KEY_ID,
    "name": "Lyon Part-Dieu tills",
    "scope": "integration",
    "prefix": "7c1e04b9a2d3",
    "created_at": "2026-11-02T14:30:00.513284Z",
    "revoked_at": None,
}

REVOKED: JsonObject = {
    "id": ADMIN_KEY_ID,
    "name": "Back-office (old)",
    "scope": "admin",
    "prefix": "884091b3d199",
    "created_at": "2026-01-05T09:02:10.287533Z",
    "revoked_at": "2026-11-02T14:31:12.004871Z",
}

CREATED: JsonObject = {**KEY, "key": "fid_7c1e04b9a2d3_Qm9vLrX2cT7yJk0aWn3sUe5pHd8fGi1bZoVtRx4lMqA"}
