"""Step 4: Cloudflare's API, its limits and its wire format; the client that sends a plan."""
