"""Delivery channels: how a decided offer or friend note reaches a shopper's phone."""
