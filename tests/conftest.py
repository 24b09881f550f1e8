pytest_plugins = [
    "tests.fixtures.mentions",
    "tests.fixtures.app",
    "tests.fixtures.live_server",
    "tests.fixtures.browser",
    "tests.fixtures.webhook_receiver",
    "tests.fixtures.prometheus",
    "tests.fixtures.postgres",
    "tests.fixtures.kafka",
    "tests.fixtures.distributed",
]
