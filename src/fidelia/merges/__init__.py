"""Identity resolution: merging two members of one person, undoing it, finding duplicates."""
