"""Step 1: a built site folder to a manifest of hashes (noise stripped) and the build's marker."""
