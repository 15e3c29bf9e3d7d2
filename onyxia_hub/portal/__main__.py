"""`python -m onyxia_hub.portal`: run the portal service (see `app.PortalApp`)."""

from .app import main

if __name__ == "__main__":
    main()
