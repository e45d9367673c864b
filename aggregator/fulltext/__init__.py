"""Full text (issue 17, item 2): the article behind an entry, fetched from its page once,
extracted in the sandbox, sanitized and stored beside the feed's own content."""
