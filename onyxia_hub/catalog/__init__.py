"""The catalog of services: `profiles/*.yaml`, validated into `model.Catalog`.

- `model`: the typed, immutable values (Service, Version, GpuOptions, Quotas...).
- `schema`: YAML documents -> model, with errors naming file, field and problem.
- `loader`: reads a directory, reloads it when files change, keeps the last good catalog.
"""
