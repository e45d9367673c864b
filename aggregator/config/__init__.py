"""Configuration: the YAML file, validated into one :class:`~.schema.AppConfig`.

- :mod:`.loading`: :func:`~.loading.load_config` (YAML with the line of every key, errors as
  ``file:line: key: message``, paths resolved against the file's folder) and
  :func:`~.loading.resolve_config_path` (``$AGGREGATOR_CONFIG``, the default path);
- :mod:`.schema`: :class:`~.schema.AppConfig`, the whole file, and the checks across sections;
- the sections: :mod:`.server`, :mod:`.sources` (``defaults``, ``sources``, ``retention``),
  :mod:`.outputs`, :mod:`.notify`;
- what they share: :mod:`.base` (strict models, entry rules), :mod:`.units` (durations, sizes),
  :mod:`.request_options` (User-Agent, credentials, proxy, ``origin_of``);
- :mod:`.edit` (adding sources to the file in place) and :mod:`.opml` (OPML in and out).

Import from the module that owns a name; this package re-exports nothing.
"""
