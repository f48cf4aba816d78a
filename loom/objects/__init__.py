"""Records the API and the conductor keep in the database on behalf of the
compute services, which never open it themselves."""
