"""Steps 2 and 3: two manifests to changes, changes to URLs, URLs to purge request bodies."""
