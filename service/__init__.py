"""figwatch's imperative shell: settings, storage, fetching, scheduling, alerts, CLI."""
