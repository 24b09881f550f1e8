pytest_plugins = [
    "tests.fixtures.mentions",
    "tests.fixtures.app",
    "tests.fixtures.live_server",
    "tests.fixtures.browser",
]
