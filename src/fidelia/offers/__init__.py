"""Personal and first-N offers, their conversion, and the member's perks."""
