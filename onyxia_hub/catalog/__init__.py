"""The catalog of services: `profiles/*.yaml`, validated into `model.Catalog`.

- `model`: the typed, immutable values (Service, Version, GpuOptions, Quotas...).
- `schema`: YAML documents -> model (the rules of a service file and of `_catalog.yaml`),
  over `yamlfile` (reading a file safely), `checker` (errors naming file, field and
  problem, all of a file at once) and `kubernetes` (the API server's name grammar).
- `loader`: reads a directory, reloads it when files change, keeps the last good catalog.
"""
