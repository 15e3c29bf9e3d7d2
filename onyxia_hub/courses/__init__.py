"""Courses: a teacher shares one link, each trainee lands in their environment with the
material open, as a hub service (`python -m onyxia_hub.courses`, at /services/courses/).

- `model`: a course, `parse_course` (API bodies, forms and course files alike);
- `files`: the operator's course files (YAML, `onyxia-hub courses check DIR`);
- `library`: courses from the store and the files, who may do what (`Access`);
- `trainees`: a trainee's course server: its name, the hub's view, the record;
- `landing`: what the link does (open, wait, progress, Start, autostart);
- `app`: `CoursesApp`, its settings, start-up, reconciler and routes;
- `handlers` (pages) and `api` (JSON).

Its store is `onyxia_hub.db.courses`, with its own tables and key. docs/courses.md
describes courses, links and the safety model.
"""
