pytest_plugins = ["tests.fixtures.mentions", "tests.fixtures.app"]
