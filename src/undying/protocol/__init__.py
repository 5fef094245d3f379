"""The Restate service protocol, sans-IO: framing, messages, ids, discovery manifests."""
