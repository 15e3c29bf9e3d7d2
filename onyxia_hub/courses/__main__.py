"""`python -m onyxia_hub.courses`: run the courses service (see `app.CoursesApp`)."""

from .app import main

if __name__ == "__main__":
    main()
