"""Inbound connectors: Shopify, WooCommerce and mapped webhooks turned into intake events."""
